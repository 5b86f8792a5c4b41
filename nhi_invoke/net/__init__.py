"""The one HTTP seam: every outbound request of nhi-invoke goes through `request()`.

CI token endpoints, issuer discovery and every broker's exchanges call this function, either
directly or through an adapter to an SDK's transport (a transport interface, a client's
send event), so network behaviour is decided here and nowhere else:

- proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` (either case) as the SDKs read them,
  CONNECT tunnels for https, credentials in the proxy URL sent as `Proxy-Authorization`;
- CAs: a service's own TLS settings where its CLI has them (`Tls`, given by the broker that
  reads them), else `--ca-bundle` for
  everything, else the CA-bundle variables the caller's SDK honours (`REQUESTS_CA_BUNDLE`
  unless a broker names its own), else `SSL_CERT_FILE`, else the system's;
- timeouts bounded by the retry deadline; one kept-alive connection per host and proxy;
- a TLS or proxy failure as one line naming the host, the proxy and the CA setting.

The environment is the invocation's: `use(Network(...))` sets it for the code of one
invocation (a context variable, so that several invocations in one process each use their
own); elsewhere the process environment is used. It is the standard library: importing a
cloud SDK alone costs more than the whole exchange on the common path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from nhi_invoke import __version__
from nhi_invoke.retry import remaining

if TYPE_CHECKING:
    from nhi_invoke.net.connection import Network

USER_AGENT = f"nhi-invoke/{__version__}"
DEFAULT_TIMEOUT_SECONDS = 10.0
# A response larger than this is not what any endpoint we call sends.
MAX_BODY_BYTES = 1 << 20
# The CA variables of requests (and of the SDKs built on it): unless a broker names its own.
GENERAL_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "GENERAL_CA_VARIABLES",
    "MAX_BODY_BYTES",
    "USER_AGENT",
    "Response",
    "Tls",
    "current",
    "request",
    "use",
]


class Tls(NamedTuple):
    """TLS settings for one service whose own clients read them from variables of their own
    (a CA bundle, a folder of CAs, "skip verification"), so that nhi-invoke trusts what the
    service's CLI trusts; they win over `--ca-bundle` and the general variables."""

    ca_file: str | None = None  # a PEM bundle
    ca_path: str | None = None  # a folder of hashed PEM certificates (c_rehash)
    verify: bool = True  # False: no certificate or hostname check at all
    label: str = "the service's CA settings"  # for messages: which settings applied
    fix_variable: str = ""  # the variable a certificate failure's fix names (VAULT_CACERT…)

    @property
    def given(self) -> bool:
        """Whether any setting is made; none: the general CA settings apply."""
        return bool(self.ca_file or self.ca_path or not self.verify)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


_current: ContextVar[Network | None] = ContextVar("nhi_network", default=None)
_process: list[Network] = []


def current() -> Network:
    """The network of the invocation running on this thread, else the process's."""
    network = _current.get()
    if network is not None:
        return network
    if not _process:
        import os  # noqa: PLC0415

        from nhi_invoke.net.connection import Network  # noqa: PLC0415

        _process.append(Network.from_environ(os.environ))
    return _process[0]


@contextmanager
def use(network: Network) -> Iterator[Network]:
    """Send this thread's requests (and those of threads started with its context) through
    `network` for the duration of the block."""
    token = _current.set(network)
    try:
        yield network
    finally:
        _current.reset(token)


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ca_variables: tuple[str, ...] = GENERAL_CA_VARIABLES,
    tls: Tls | None = None,
) -> Response:
    """Send one request; a transient failure raises `Retryable`, any response returns.

    `ca_variables` are the CA-bundle variables this call honours, as its SDK would (a
    broker whose SDK reads its own variable passes it). A certificate nobody trusts, or a
    proxy that refuses its credentials, raises an `NhiError` at once: retrying would not
    help. `tls`: the service's own TLS settings (used instead of `ca_variables` when given).
    """
    return current().send(
        method,
        url,
        body=body,
        headers=headers or {},
        timeout=remaining(timeout),
        ca_variables=ca_variables,
        tls=tls,
    )

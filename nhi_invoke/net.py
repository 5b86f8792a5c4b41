"""The one HTTP seam: every outbound request of nhi-invoke goes through `request()`.

CI token endpoints, issuer discovery and every broker's exchanges call this function, either
directly or through an adapter to an SDK's transport interface (which does no I/O of its
own), so network behaviour (timeouts and the retry deadline today; proxies and CA bundles
next) is decided here and nowhere else. The one exception is a call a broker makes through an
SDK's own client (the IAM calls of a revocation): that SDK's HTTP stack reads the same proxy
and CA-bundle variables itself. It is the standard library: importing a cloud SDK alone costs
more than the whole exchange on the common path.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nhi_invoke import __version__
from nhi_invoke.retry import Retryable, remaining

if TYPE_CHECKING:
    import ssl

USER_AGENT = f"nhi-invoke/{__version__}"
DEFAULT_TIMEOUT_SECONDS = 10.0
# A response larger than this is not what any endpoint we call sends.
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Tls:
    """TLS settings for one service whose own clients read them from variables of their own
    (a CA bundle, a folder of CAs, "skip verification"), so that nhi-invoke trusts what the
    service's CLI trusts. None of them: the default trust store."""

    ca_file: str | None = None  # a PEM bundle
    ca_path: str | None = None  # a folder of hashed PEM certificates (c_rehash)
    verify: bool = True  # False: no certificate or hostname check at all

    def context(self) -> ssl.SSLContext:
        import ssl  # noqa: PLC0415

        if not self.verify:
            unverified = ssl.create_default_context()
            unverified.check_hostname = False
            unverified.verify_mode = ssl.CERT_NONE
            return unverified
        if self.ca_file or self.ca_path:
            return ssl.create_default_context(cafile=self.ca_file, capath=self.ca_path)
        return ssl.create_default_context()


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    tls: Tls | None = None,
) -> Response:
    """Send one request; a connection-level failure raises `Retryable`, any response returns.

    `tls`: the service's own TLS settings, for an https URL (default: the system's trust)."""
    # Imported here: `--dry-run` and `--version` never make a request and skip their ~20 ms.
    import http.client  # noqa: PLC0415
    import ssl  # noqa: PLC0415

    timeout = remaining(timeout)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname,
            parts.port,
            timeout=timeout,
            context=tls.context() if tls is not None else ssl.create_default_context(),
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    all_headers = {"User-Agent": USER_AGENT, "Connection": "close", **(headers or {})}
    try:
        conn.request(method, target, body=body, headers=all_headers)
        resp = conn.getresponse()
        data = resp.read(MAX_BODY_BYTES + 1)
        return Response(status=resp.status, body=data[:MAX_BODY_BYTES])
    except TimeoutError as exc:
        raise Retryable(f"no answer from {parts.hostname} within {timeout:g} s", exc) from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise Retryable(f"{type(exc).__name__} talking to {parts.hostname}", exc) from exc
    finally:
        conn.close()

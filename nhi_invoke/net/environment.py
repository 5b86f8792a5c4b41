"""Where a request goes and whom it trusts, read from an environment as the SDKs read it.

Proxies: the `<scheme>_proxy` variables in either case (lower case winning) and `no_proxy`,
with the semantics of the standard library's `getproxies_environment()` and
`proxy_bypass_environment()`, which the SDKs and requests use too. CA bundles: a bundle
given to nhi-invoke (`--ca-bundle`, `NHI_CA_BUNDLE`) for every request; else the variables
the caller names (a broker's SDK's own, else `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE`, as
requests reads them); else OpenSSL's `SSL_CERT_FILE`/`SSL_CERT_DIR`; else the system's CAs. A bundle
replaces the system's CAs, as it does in the SDKs. Pure: no network, no `ssl` import.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Any, NamedTuple

from nhi_invoke.errors import ConfigError

OPENSSL_CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
CA_BUNDLE_VARIABLE = "NHI_CA_BUNDLE"
_PEM_MARK = b"-----BEGIN CERTIFICATE-----"
_DEFAULT_PORTS = {"http": 80, "https": 443}


# Typed named tuples rather than frozen dataclasses: immutable all the same, and a quarter of
# the cost to define, on every run.
class CaBundle(NamedTuple):
    """A CA bundle given to nhi-invoke, and where it was given (for messages)."""

    path: str
    origin: str  # "--ca-bundle", "NHI_CA_BUNDLE", "ca-bundle in ./nhi-invoke.toml"


def ca_bundle(raw: Any, source: Any) -> CaBundle:
    """The `--ca-bundle` option's value: a readable file holding PEM certificates (exit 78)."""
    label = str(getattr(source, "label", CA_BUNDLE_VARIABLE))
    path = os.path.abspath(os.path.expanduser(str(raw)))
    check_bundle(path, label)
    return CaBundle(path, label)


def check_bundle(path: str, label: str) -> None:
    """A CA bundle named by `label` must be a readable file with PEM certificates."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError as exc:
        raise ConfigError(
            f"{label} {path}: {exc.strerror or type(exc).__name__}",
            f"point {label} at a PEM file of CA certificates",
        ) from exc
    if _PEM_MARK not in head:
        raise ConfigError(
            f"{label} {path} holds no PEM certificate", f"point {label} at a PEM CA bundle"
        )


class Proxy(NamedTuple):
    """An HTTP proxy: where it is, which variable named it, and its credentials (if any)."""

    host: str
    port: int
    variable: str
    # The Proxy-Authorization header's value: a secret, never in a repr or a message.
    authorization: str | None = None

    def __repr__(self) -> str:
        return f"Proxy({self.display})"

    @property
    def display(self) -> str:
        """The proxy as messages show it: never its credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port} ({self.variable})"


class Trust(NamedTuple):
    """The CAs a TLS connection trusts: a file or folder, else the system's, and why."""

    cafile: str | None
    capath: str | None
    label: str  # "REQUESTS_CA_BUNDLE=/etc/ca.pem", "the system's CAs"…
    variables: tuple[str, ...]  # the variables that would have applied, for hints
    verify: bool = True  # False only when the service's own settings say so
    # The service's own settings: --ca-bundle does not apply, so a fix names only `variables`.
    from_service: bool = False


def environment_proxies(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """scheme -> (proxy URL, the variable that set it), as `getproxies_environment()`."""
    proxies: dict[str, tuple[str, str]] = {}
    # Two passes, as the standard library does: any case first, then lower case only wins
    # (and an empty lower-case variable removes the proxy).
    for name, value in environ.items():
        lowered = name.lower()
        if value and lowered.endswith("_proxy"):
            proxies[lowered[:-6]] = (value, name)
    # CVE-2016-1000110: in a CGI request HTTP_PROXY may come from a client's Proxy header.
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                proxies[name.lower()[:-6]] = (value, name)
            else:
                proxies.pop(name.lower()[:-6], None)
    return proxies


def bypasses(netloc: str, no_proxy: str | None) -> bool:
    """Whether `no_proxy` exempts `netloc` (host[:port]), as `proxy_bypass_environment()`."""
    if no_proxy is None:
        return False
    if no_proxy == "*":
        return True
    host = netloc.lower()
    head, colon, port = host.rpartition(":")
    # The standard library's _splitport: "host:" and "host:443" are both "host".
    hostonly = head if colon and (port == "" or (port.isascii() and port.isdigit())) else host
    for entry in no_proxy.split(","):
        name = entry.strip()
        if not name:
            continue
        name = name.lstrip(".").lower()
        if name in (hostonly, host):
            return True
        if hostonly.endswith("." + name) or host.endswith("." + name):
            return True
    return False


def parse_proxy(value: str, variable: str) -> Proxy:
    """A proxy URL (`http://[user:password@]host:port`, or `host:port`) as a `Proxy`."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + text  # the SDKs read a bare authority as http
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # "http://[::1": neither it nor the error (whose text can quote the
        # netloc, password included, even in a --debug traceback) is shown
        raise ConfigError(
            f"{variable} is not a URL", f"set {variable} to http://host:port"
        ) from None
    # Host and port, never the user and password before an "@".
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if parts.scheme != "http":
        raise ConfigError(
            f"{variable} names a {parts.scheme}:// proxy ({shown}); nhi-invoke speaks plain "
            "HTTP to its proxy (CONNECT tunnels for https)",
            f"set {variable} to the proxy's http://host:port",
        )
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ConfigError(
            f"{variable} has an invalid port ({shown})", f"set {variable} to http://host:port"
        ) from exc
    if not parts.hostname:
        raise ConfigError(f"{variable} names no proxy host", f"set {variable} to http://host:port")
    authorization = None
    if parts.username is not None:
        import base64  # noqa: PLC0415 - only for a proxy that takes credentials

        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        authorization = "Basic " + token
    return Proxy(parts.hostname, port, variable, authorization)


class NetworkEnvironment:
    """One environment's proxies and CA settings (and a CA bundle given to nhi-invoke)."""

    def __init__(self, environ: Mapping[str, str], bundle: CaBundle | None = None) -> None:
        self.proxies = environment_proxies(environ)
        self.bundle = bundle
        self._environ = environ

    @property
    def no_proxy(self) -> str | None:
        found = self.proxies.get("no")
        return found[0] if found else None

    def proxy_for(self, scheme: str, netloc: str) -> Proxy | None:
        """The proxy for a URL of this scheme and authority, or None (direct)."""
        found = self.proxies.get(scheme)
        if found is None or bypasses(netloc, self.no_proxy):
            return None
        return parse_proxy(*found)

    def trust_for(self, ca_variables: tuple[str, ...]) -> Trust:
        """The CAs a call that honours `ca_variables` trusts."""
        if self.bundle is not None:
            return Trust(
                self.bundle.path, None, f"{self.bundle.origin} {self.bundle.path}", ca_variables
            )
        environ = self._environ
        for name in ca_variables:
            if environ.get(name):
                return Trust(environ[name], None, f"{name}={environ[name]}", ca_variables)
        cafile = environ.get("SSL_CERT_FILE") or None
        capath = environ.get("SSL_CERT_DIR") or None
        if cafile or capath:
            shown = " ".join(f"{n}={environ[n]}" for n in OPENSSL_CA_VARIABLES if environ.get(n))
            return Trust(cafile, capath, shown, ca_variables)
        return Trust(None, None, "the system's CAs", ca_variables)


def default_port(scheme: str) -> int:
    return _DEFAULT_PORTS.get(scheme, 80)

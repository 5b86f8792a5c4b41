"""One invocation's network: its environment's proxies and CAs, TLS contexts made once, and
connections kept alive between the calls of the invocation (per host, proxy and CA).

Failures are classified here, once: what is worth a retry raises `Retryable`; a certificate
that is not trusted, or a proxy that refuses us, raises an `NhiError` at once. Every message
names the host, the proxy (never its credentials) and, for https, the CA setting.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping

from nhi_invoke.errors import ConfigError, NhiError, UnavailableError
from nhi_invoke.net import MAX_BODY_BYTES, USER_AGENT, Response, Tls
from nhi_invoke.net.environment import (
    CA_BUNDLE_VARIABLE,
    CaBundle,
    NetworkEnvironment,
    Proxy,
    Trust,
    check_bundle,
    default_port,
)
from nhi_invoke.retry import Retryable

# A kept-alive connection idle longer than this is closed rather than reused: servers close
# idle connections after 5-60 s, and a request sent on one they closed would need resending.
IDLE_SECONDS = 4.0
# What a reused connection the server has closed raises before any answer arrives.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)

_Key = tuple[str, str, int, str | None, str | None, str | None, bool | None]


class Network:
    """Proxies, CAs and kept-alive connections for the requests of one invocation."""

    def __init__(self, environ: Mapping[str, str], bundle: CaBundle | None = None) -> None:
        self.environment = NetworkEnvironment(environ, bundle)
        self._contexts: dict[tuple[str | None, str | None, bool], ssl.SSLContext] = {}
        self._idle: dict[_Key, list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Network:
        """The network of a command other than `run`: `NHI_CA_BUNDLE` as its CA bundle."""
        path = environ.get(CA_BUNDLE_VARIABLE)
        bundle = None
        if path:
            bundle = CaBundle(os.path.abspath(os.path.expanduser(path)), CA_BUNDLE_VARIABLE)
            check_bundle(bundle.path, CA_BUNDLE_VARIABLE)
        return cls(environ, bundle)

    def close(self) -> None:
        """Close every kept-alive connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection, _ in connections:
                connection.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
        ca_variables: tuple[str, ...],
        tls: Tls | None = None,
    ) -> Response:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        host = parts.hostname
        port = parts.port or default_port(parts.scheme)
        proxy = self.environment.proxy_for(parts.scheme, parts.netloc)
        trust = None
        if parts.scheme == "https":
            trust = (
                self.environment.trust_for(ca_variables)
                if tls is None or not tls.given
                else Trust(
                    tls.ca_file,
                    tls.ca_path,
                    tls.label,
                    (tls.fix_variable,) if tls.fix_variable else (),
                    tls.verify,
                    from_service=True,
                )
            )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": USER_AGENT, **headers}
        if proxy is not None and parts.scheme == "http":
            # Forwarded by the proxy: the absolute URL, and the proxy's credentials.
            target = f"http://{parts.netloc}{target}"
            if proxy.authorization is not None:
                sent["Proxy-Authorization"] = proxy.authorization
        where = _Where(host, port, proxy, trust)
        key: _Key = (
            parts.scheme,
            host,
            port,
            proxy.display if proxy else None,
            trust.cafile if trust else None,
            trust.capath if trust else None,
            trust.verify if trust else None,
        )
        connection = self._take(key)
        if connection is not None:
            try:
                return self._exchange(connection, key, method, target, body, sent, timeout, where)
            except _Stale:
                pass  # closed by the server while idle: once more on a new connection
        connection = self._open(host, port, proxy, trust, timeout)
        try:
            return self._exchange(connection, key, method, target, body, sent, timeout, where)
        except _Stale as stale:
            raise Retryable(f"{host} closed the connection{where.via}", stale.cause) from stale

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        key: _Key,
        method: str,
        target: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
        where: _Where,
    ) -> Response:
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        kept = False
        try:
            try:
                connection.request(method, target, body=body, headers=dict(headers))
                answer = connection.getresponse()
            except _STALE as exc:
                raise _Stale(exc) from exc
            data = answer.read(MAX_BODY_BYTES + 1)
            response = Response(answer.status, data[:MAX_BODY_BYTES], dict(answer.getheaders()))
            if answer.status == 407 and where.proxy is not None:
                raise where.proxy_refused(407, answer.reason)
            if not answer.will_close and len(data) <= MAX_BODY_BYTES:
                self._give(key, connection)
                kept = True
            return response
        except (NhiError, _Stale):
            raise
        except Exception as exc:
            mapped = where.failure(exc, timeout)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            if not kept:
                connection.close()

    def _open(
        self,
        host: str,
        port: int,
        proxy: Proxy | None,
        trust: Trust | None,
        timeout: float,
    ) -> http.client.HTTPConnection:
        """A new connection (not yet connected: the first request connects it)."""
        address = (proxy.host, proxy.port) if proxy is not None else (host, port)
        if trust is None:  # plain http
            return http.client.HTTPConnection(*address, timeout=timeout)
        connection = http.client.HTTPSConnection(
            *address, timeout=timeout, context=self._context(trust)
        )
        if proxy is not None:
            tunnel = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else {}
            connection.set_tunnel(host, port, headers=tunnel)
        return connection

    def _context(self, trust: Trust) -> ssl.SSLContext:
        """The TLS context trusting `trust`'s CAs, made once per network (loading a bundle
        costs milliseconds)."""
        key = (trust.cafile, trust.capath, trust.verify)
        with self._lock:
            context = self._contexts.get(key)
            if context is not None:
                return context
            if not trust.verify:  # the service's own "skip verification" (VAULT_SKIP_VERIFY)
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                self._contexts[key] = context
                return context
            try:
                context = ssl.create_default_context(cafile=trust.cafile, capath=trust.capath)
            except (OSError, ssl.SSLError) as exc:
                named = trust.label.split("=", 1)[0].split(" ", 1)[0]
                raise ConfigError(
                    f"cannot load the CA certificates of {trust.label}: "
                    f"{getattr(exc, 'strerror', None) or getattr(exc, 'reason', None) or exc}",
                    f"point {named} at a PEM file of CA certificates",
                ) from exc
            self._contexts[key] = context
            return context

    def _take(self, key: _Key) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                connection, since = idle.pop()
                if now - since <= IDLE_SECONDS:
                    return connection
                connection.close()
        return None

    def _give(self, key: _Key, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append((connection, time.monotonic()))


class UntrustedCertificate(UnavailableError):
    """A certificate nobody trusts: retrying will not change it. `verify_message` is
    OpenSSL's reason, for a broker that words the error for its own service."""

    def __init__(self, problem: str, fix: str, *, verify_message: str) -> None:
        super().__init__(problem, fix)
        self.verify_message = verify_message


class _Stale(Exception):
    """A connection the server closed before answering (a request on it can be resent)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Where:
    """Where one request went, for the messages of its failures."""

    def __init__(self, host: str, port: int, proxy: Proxy | None, trust: Trust | None) -> None:
        self.host = host
        self.port = port
        self.proxy = proxy
        self.trust = trust

    @property
    def via(self) -> str:
        through = f" through the proxy {self.proxy.display}" if self.proxy else ""
        return through + (f"; CA: {self.trust.label}" if self.trust else "")

    def proxy_refused(self, status: int, reason: str) -> NhiError:
        assert self.proxy is not None
        proxy = self.proxy
        what = f"the proxy {proxy.display} refused {self.host}:{self.port}: {status} {reason}"
        if status == 407:
            hint = (
                f"the proxy rejected the user and password in {proxy.variable}; correct them"
                if proxy.authorization
                else f"put the proxy's user and password in {proxy.variable} "
                "(http://user:password@host:port)"
            )
            return ConfigError(what, hint)
        return UnavailableError(what, f"ask the proxy's operators to allow {self.host}")

    def failure(self, exc: Exception, timeout: float) -> Exception:
        """A transport failure as a `Retryable`, or an `NhiError` when a retry cannot help."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            assert self.trust is not None
            general = () if self.trust.from_service else ("--ca-bundle",)
            variables = " or ".join((*self.trust.variables[:1], *general))
            return UntrustedCertificate(
                f"TLS: {self.host} presented a certificate that is not trusted "
                f"({exc.verify_message or exc.reason}){self.via}",
                f"if a private CA or a TLS-inspecting proxy signs it, give its CA with {variables}",
                verify_message=str(exc.verify_message or exc.reason),
            )
        if isinstance(exc, ssl.SSLError):
            reason = exc.reason or type(exc).__name__
            return Retryable(f"TLS with {self.host} failed ({reason}){self.via}", exc)
        if isinstance(exc, TimeoutError):
            return Retryable(f"no answer from {self.host} within {timeout:g} s{self.via}", exc)
        message = str(exc)
        if message.startswith("Tunnel connection failed:") and self.proxy is not None:
            status_text = message.split(":", 1)[1].strip()
            code, _, reason = status_text.partition(" ")
            if code == "407" or code.startswith("4"):
                return self.proxy_refused(int(code), reason)
            return Retryable(
                f"the proxy {self.proxy.display} could not open a tunnel to "
                f"{self.host}:{self.port} ({status_text})",
                exc,
            )
        if isinstance(exc, socket.gaierror):
            name = self.proxy.host if self.proxy else self.host
            return Retryable(f"cannot resolve {name}{self.via}", exc)
        if isinstance(exc, ConnectionRefusedError) and self.proxy is not None:
            return Retryable(f"the proxy {self.proxy.display} refused the connection", exc)
        if isinstance(exc, OSError | http.client.HTTPException):
            return Retryable(f"{type(exc).__name__} talking to {self.host}{self.via}", exc)
        return exc

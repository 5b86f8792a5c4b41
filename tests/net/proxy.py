"""A logging, enforcing HTTP(S) forward proxy on 127.0.0.1, as a runner's egress proxy.

- Plain HTTP (`GET http://host/path`, absolute form) is forwarded; `CONNECT host:port` opens
  a tunnel whose bytes (TLS, end to end between client and server) it relays untouched.
- Every request is recorded (`records`): method, host, port, path (plain HTTP only: a
  tunnel's path is inside TLS), whether it was authorised and what became of it. So a test can
  assert "the proxy saw every call" and "the proxy saw none of these".
- Enforcing: it connects only to the routes it was given (a test hostname and port -> an
  address on 127.0.0.1) and to loopback addresses themselves; any other host is answered
  `502` as a name the proxy cannot resolve, without a connection attempt. The test hostnames
  (`*.nhi-test.invalid`) resolve nowhere else, so a client that bypasses the proxy fails to
  resolve them, and all traffic stays on loopback.
- With `credentials`, it requires `Proxy-Authorization: Basic …` and answers `407` otherwise.
  The records say only whether a request was authorised, never what it carried.
"""

from __future__ import annotations

import base64
import hmac
import http.client
import secrets
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.net.relay import relay

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# Headers that belong to one hop (RFC 9110 7.6.1) and to the proxy: never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy received (never a header value: they may hold secrets)."""

    method: str  # CONNECT, GET, POST…
    host: str
    port: int
    path: str | None  # plain HTTP only
    authorized: bool  # carried the right Proxy-Authorization, or none was required
    outcome: str  # forwarded, tunnelled, proxy-auth-required, unknown-host, upstream-failed

    @property
    def tunnel(self) -> bool:
        return self.method == "CONNECT"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ProxyCredentials:
    """The user and password a proxy requires; `password` is a secret of the test."""

    user: str
    password: str

    @classmethod
    def generate(cls, user: str = "nhi-proxy-user") -> ProxyCredentials:
        return cls(user, "pw-" + secrets.token_urlsafe(18))

    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()


def _split_authority(authority: str, default_port: int) -> tuple[str, int]:
    parts = urllib.parse.urlsplit("//" + authority)
    return (parts.hostname or "").lower(), parts.port or default_port


class ForwardProxy:
    """The proxy; `routes` maps "name:port" to the "127.0.0.1:port" that serves it."""

    def __init__(
        self,
        routes: Mapping[str, str] | None = None,
        credentials: ProxyCredentials | None = None,
    ) -> None:
        self.routes = {k.lower(): v for k, v in (routes or {}).items()}
        self.credentials = credentials
        self._records: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's URL, without credentials."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url_with_credentials(self) -> str:
        """The URL a client puts in `HTTPS_PROXY` (with `user:password@` when required)."""
        if self.credentials is None:
            return self.url
        user = urllib.parse.quote(self.credentials.user, safe="")
        password = urllib.parse.quote(self.credentials.password, safe="")
        return self.url.replace("http://", f"http://{user}:{password}@", 1)

    @property
    def records(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self._records)

    def authorities(self) -> set[str]:
        """Every "host:port" a client asked for, tunnelled or not."""
        return {r.authority for r in self.records}

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def start(self) -> ForwardProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self._records.append(request)

    def _target(self, host: str, port: int) -> tuple[str, int] | None:
        """Where a request for host:port goes, or None: the proxy cannot resolve it."""
        routed = self.routes.get(f"{host}:{port}")
        if routed is not None:
            return _split_authority(routed, port)
        if host in LOOPBACK:
            return host, port
        return None

    def _authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        return header is not None and hmac.compare_digest(
            header.encode(), self.credentials.header().encode()
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the records are the log."""

            def _answer(self, status: int, message: str, close: bool = False) -> None:
                body = (message + "\n").encode()
                self.send_response(status)
                if status == 407:
                    self.send_header("Proxy-Authenticate", 'Basic realm="nhi-test-proxy"')
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def _admit(
                self, host: str, port: int, path: str | None
            ) -> tuple[str, int, bool] | None:
                """The upstream address, or None after answering why not (and recording it)."""
                authorized = proxy._authorized(self.headers.get("Proxy-Authorization"))
                target = proxy._target(host, port) if authorized else None
                if not authorized:
                    outcome = "proxy-auth-required"
                elif target is None:
                    outcome = "unknown-host"
                else:
                    return target[0], target[1], authorized
                proxy._record(ProxiedRequest(self.command, host, port, path, authorized, outcome))
                if outcome == "proxy-auth-required":
                    self._answer(407, "proxy authentication required", close=True)
                else:
                    self._answer(502, f"proxy: cannot resolve {host}", close=True)
                return None

            def do_CONNECT(self) -> None:
                host, port = _split_authority(self.path, 443)
                admitted = self._admit(host, port, None)
                if admitted is None:
                    return
                target_host, target_port, authorized = admitted
                try:
                    upstream = socket.create_connection((target_host, target_port), timeout=10)
                except OSError:
                    proxy._record(
                        ProxiedRequest("CONNECT", host, port, None, authorized, "upstream-failed")
                    )
                    self._answer(502, f"proxy: cannot connect to {host}:{port}", close=True)
                    return
                proxy._record(ProxiedRequest("CONNECT", host, port, None, authorized, "tunnelled"))
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                upstream.settimeout(None)
                with upstream:
                    relay(self.connection, upstream)

            def _forward(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                if parts.scheme != "http" or not parts.hostname:
                    self._answer(400, "proxy: expected an absolute http:// URL", close=True)
                    return
                host, port = parts.hostname.lower(), parts.port or 80
                path = parts.path or "/"
                target_path = path + ("?" + parts.query if parts.query else "")
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    self._answer(411, "proxy: send a Content-Length", close=True)
                    return
                admitted = self._admit(host, port, path)
                if admitted is None:
                    return
                target_host, target_port, authorized = admitted
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection(target_host, target_port, timeout=30)
                try:
                    upstream.request(self.command, target_path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                except OSError:
                    failed = "upstream-failed"
                    proxy._record(
                        ProxiedRequest(self.command, host, port, path, authorized, failed)
                    )
                    self._answer(502, f"proxy: {host}:{port} did not answer", close=True)
                    return
                finally:
                    upstream.close()
                proxy._record(
                    ProxiedRequest(self.command, host, port, path, authorized, "forwarded")
                )
                # The upstream's own Date and Server headers pass through: add none of ours.
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        return Handler

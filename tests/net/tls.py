"""A private certificate authority (from `trustme`) and TLS fronts signed by it.

A `TlsFront` listens on 127.0.0.1, terminates TLS with a certificate for the test hostnames
of one emulator, and relays the decrypted bytes to that emulator's plain-HTTP port. A client
trusts it only when given the CA's bundle (`PrivateCa.bundle`): the certificate is in no
system store. Each handshake is counted, and each failed one is kept with OpenSSL's reason,
so a test can show that a client refused the certificate (rather than never arriving).
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import trustme

from tests.net.relay import relay


class PrivateCa:
    """A CA no system trusts; its certificate is written to `bundle` (PEM)."""

    def __init__(self, folder: Path) -> None:
        self._ca = trustme.CA(organization_name="nhi-invoke tests private CA")
        self.bundle = folder / "private-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.bundle))

    @property
    def pem(self) -> bytes:
        return self._ca.cert_pem.bytes()

    def server_context(self, hostnames: Sequence[str]) -> ssl.SSLContext:
        """A server context whose certificate, signed by this CA, names `hostnames`."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*hostnames).configure_cert(context)
        return context


# Also on every certificate: a client exempted from the proxy (`NO_PROXY`) reaches a front
# directly as https://localhost:PORT.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")


class TlsFront:
    """HTTPS for one plain-HTTP emulator (`upstream`, e.g. http://127.0.0.1:5000)."""

    def __init__(self, ca: PrivateCa, hostnames: Sequence[str], upstream: str) -> None:
        self.hostnames = tuple(hostnames)
        target = urllib.parse.urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self._context = ca.server_context(self.hostnames + LOOPBACK_NAMES)
        self.handshakes = 0
        self.failed_handshakes: list[str] = []
        self._lock = threading.Lock()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """Where the front listens, "127.0.0.1:port" (a proxy route's target)."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def direct_url(self) -> str:
        """The front without the proxy, for clients that `NO_PROXY` exempts."""
        return f"https://localhost:{self._server.server_address[1]}"

    def start(self) -> TlsFront:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TlsFront:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _handler(self) -> type[socketserver.BaseRequestHandler]:
        front = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                raw: socket.socket = self.request
                raw.settimeout(10)  # for the handshake; the relay waits on a selector
                try:
                    secure = front._context.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as error:
                    with front._lock:
                        front.failed_handshakes.append(
                            getattr(error, "reason", None) or type(error).__name__
                        )
                    return
                with front._lock:
                    front.handshakes += 1
                with secure, socket.create_connection(front._upstream, timeout=10) as upstream:
                    secure.settimeout(None)
                    upstream.settimeout(None)
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    relay(secure, upstream)

        return Handler

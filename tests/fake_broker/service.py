"""A secrets service on 127.0.0.1 that issues, checks and revokes short-lived tokens.

`POST /issue` with the caller's OIDC token as bearer: a token for its `sub`, with an accessor
id. `POST /revoke` with `{"accessor": …}`: revokes it. `GET /whoami` with a token as bearer:
who it belongs to, or 401 once revoked or expired. `GET /__state`: every token's accessor,
subject and whether it is live (never the token itself). `refuse` makes `/issue` answer 403.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Issued:
    accessor: str
    subject: str
    expires: float
    revoked: bool = False


def _subject(oidc_token: str) -> str | None:
    try:
        payload = oidc_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


class SecretsService:
    """The service, served from a background thread; use it as a context manager."""

    def __init__(self) -> None:
        self.tokens: dict[str, Issued] = {}
        self.refuse = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> SecretsService:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def state(self) -> dict[str, dict[str, Any]]:
        """Accessor -> subject and whether the token still works."""
        with self._lock:
            return {
                i.accessor: {"subject": i.subject, "live": self._live(i)}
                for i in self.tokens.values()
            }

    @staticmethod
    def _live(issued: Issued) -> bool:
        return not issued.revoked and issued.expires > time.time()

    def _issue(self, bearer: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        subject = _subject(bearer)
        if subject is None:
            return 401, {"error": "an OIDC token is required"}
        if self.refuse:
            return 403, {"error": f"{subject} may not have a token"}
        lifetime = int(body.get("lifetime", 300))
        token = "fake-secret." + secrets.token_urlsafe(24)
        issued = Issued("acc-" + secrets.token_hex(6), subject, time.time() + lifetime)
        with self._lock:
            self.tokens[token] = issued
        return 200, {"token": token, "accessor": issued.accessor, "expires_in": lifetime}

    def _revoke(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            found = [i for i in self.tokens.values() if i.accessor == body.get("accessor")]
            for issued in found:
                issued.revoked = True
        return (200, {"revoked": True}) if found else (404, {"error": "no such accessor"})

    def _whoami(self, bearer: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            issued = self.tokens.get(bearer)
            if issued is None or not self._live(issued):
                return 401, {"error": "not a live token"}
            return 200, {"subject": issued.subject, "accessor": issued.accessor}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silent."""

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _bearer(self) -> str:
                scheme, _, value = self.headers.get("Authorization", "").partition(" ")
                return value if scheme.lower() == "bearer" else ""

            def do_GET(self) -> None:
                if self.path == "/whoami":
                    self._send(*service._whoami(self._bearer()))
                elif self.path == "/__state":
                    self._send(200, service.state())
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                if self.path == "/issue":
                    self._send(*service._issue(self._bearer(), body))
                elif self.path == "/revoke":
                    self._send(*service._revoke(body))
                else:
                    self._send(404, {"error": "not found"})

        return Handler

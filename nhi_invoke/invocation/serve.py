"""`--serve`: short credentials served to the command for exactly as long as it runs.

One loopback HTTP host; each broker mounts its endpoint (`CredentialBroker.endpoint`), which
speaks a protocol the broker's SDKs already read (a container-credentials endpoint, a
metadata server…), below `/<random path>/<broker name>` on 127.0.0.1. The host is started after the
first credentials are issued and stopped the moment the command exits. A credential is
re-issued, from a fresh OIDC token, when the command asks for it and it has less than the
refresh margin left; each new one is recorded like the first.

It serves every broker under `--serve`, and without it the brokers whose plan is
`always_served` (a cloud whose SDKs read tokens from an endpoint and from no variable).
"""

from __future__ import annotations

import secrets
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nhi_invoke.brokers.grants import Grant, GrantRecorder, TokenSupplier
from nhi_invoke.brokers.serving import Endpoint, Reply
from nhi_invoke.diagnostics import Log
from nhi_invoke.errors import NhiError

log = Log("serve")


class Refresher:
    """One broker's current credential, re-issued when it is about to expire."""

    def __init__(
        self,
        first: Grant,
        issue: Callable[[], Grant],
        margin_seconds: float,
        *,
        tokens: TokenSupplier,
        record: GrantRecorder,
    ) -> None:
        self._current = first
        self.issue = issue
        self.margin_seconds = margin_seconds
        # For endpoints that issue further grants themselves (see `CurrentGrant`).
        self.tokens = tokens
        self.record = record
        self._lock = threading.Lock()

    @property
    def current(self) -> Grant:
        return self._current

    def get(self) -> Grant:
        """The current credential, re-issued first if it has less than the margin left."""
        with self._lock:
            left = (self._current.expires_at - datetime.now(UTC)).total_seconds()
            if left < self.margin_seconds:
                try:
                    self._current = self.issue()
                except NhiError as error:
                    if left <= 0:
                        raise
                    # Still valid: serve it, and try again on the next request.
                    log.warning(
                        "refresh failed, serving the current credential: %s", error.one_line()
                    )
            return self._current


class CredentialHost:
    """The loopback server; `start()` before the command, `stop()` the moment it exits."""

    def __init__(self, endpoints: Mapping[str, Endpoint]) -> None:
        self.endpoints = dict(endpoints)  # by broker name
        self.secret_path = "/" + secrets.token_urlsafe(24)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # `stop()` waits for the loop to notice, which it does once per poll: at the default
        # 0.5 s every served command would end half a second late.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._stopped = False

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def base_url(self, name: str) -> str:
        return f"http://{self.address}{self.secret_path}/{name}"

    def environments(self) -> dict[str, dict[str, str]]:
        """Each broker's variables pointing the child at its endpoint (secrets of the child)."""
        return {name: e.environment(self.base_url(name)) for name, e in self.endpoints.items()}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving (at once, whatever the command left running); harmless twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        for endpoint in self.endpoints.values():
            endpoint.close()

    def _reply(self, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply:
        if not path.startswith(self.secret_path + "/"):
            return Reply(404, "text/plain", "not found")
        name, _, rest = path[len(self.secret_path) + 1 :].partition("/")
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return Reply(404, "text/plain", "not found")
        try:
            return endpoint.handle(f"/{rest}" if rest else "", headers, query)
        except NhiError as error:
            # The command's SDK shows this; it names the failure, never a secret.
            return Reply(503, "text/plain", error.one_line())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: request lines would show the secret path."""

            def do_GET(self) -> None:
                path, _, raw_query = self.path.partition("?")
                # Header names are case-insensitive: endpoints look them up in Title-Case.
                headers = {k.title(): v for k, v in self.headers.items()}
                query = {k: v[0] for k, v in urllib.parse.parse_qs(raw_query).items()}
                reply = host._reply(path, headers, query)
                data = reply.body.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

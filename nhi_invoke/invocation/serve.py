"""`--serve`: short credentials served to the command for exactly as long as it runs.

One loopback HTTP host; each broker mounts its endpoint (`CredentialBroker.endpoint`), which
speaks a protocol the broker's SDKs already read (a container-credentials endpoint, a
metadata server…), below `/<random path>/<broker name>` on 127.0.0.1. The host is started after the
first credentials are issued and stopped the moment the command exits. Each credential is
re-issued ahead of its expiry by a `Refresher` (`refresh.py`), so that an answer never waits
for an exchange. A client that hangs up before its answer is written is nobody's error.

It serves every broker under `--serve`, and without it the brokers whose plan is
`always_served` (a cloud whose SDKs read tokens from an endpoint and from no variable).
"""

from __future__ import annotations

import secrets
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nhi_invoke.brokers.serving import Endpoint, Reply
from nhi_invoke.diagnostics import Log
from nhi_invoke.errors import NhiError

log = Log("serve")


class CredentialHost:
    """The loopback server; `start()` before the command, `stop()` the moment it exits."""

    def __init__(self, endpoints: Mapping[str, Endpoint]) -> None:
        self.endpoints = dict(endpoints)  # by broker name
        self.secret_path = "/" + secrets.token_urlsafe(24)
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
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

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret of the host the command is given: the random path, and each
        endpoint's own (an authorization token…), to be masked wherever the CI shows output."""
        own = (s.reveal() for endpoint in self.endpoints.values() for s in endpoint.secrets())
        return (self.secret_path.lstrip("/"), *own)

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


class _QuietServer(ThreadingHTTPServer):
    """A loopback server that shows no traceback when a client hangs up before its answer
    (an SDK that timed out, or a command that was killed): that is the client's business."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("a client hung up before its answer: %s", type(error).__name__)
            return
        # A bug of ours: one line (the traceback with --debug), and the server keeps serving.
        log.warning("internal error answering a request: %s", type(error).__name__)
        log.debug("%s", "".join(traceback.format_exception(error)) if error else "")

"""The HTTP plumbing the emulators share: a JSON handler, a server on 127.0.0.1, free ports."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class JsonHandler(BaseHTTPRequestHandler):
    """Answers JSON, quietly, without Nagle's delay."""

    # http.server writes headers and body separately; without this, delayed ACKs add
    # ~40 ms to every request and distort every timing.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the tests read stderr, and request lines are noise there."""

    def send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LoopbackService:
    """A service on 127.0.0.1 at a free port, served from a background thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def free_port(following: int = 0) -> int:
    """A port on 127.0.0.1 that is free now, with `following` free ports right after it.

    For servers we start as processes (some also take their port + 1, for cluster traffic).
    Another process may take the port before ours binds it: callers retry on that failure.
    """
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port + following > 65535:
                continue
            try:
                for offset in range(1, following + 1):
                    with socket.socket() as next_one:
                        next_one.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
            return port
    raise OSError("no free run of ports on 127.0.0.1")

"""A fault-injecting HTTP proxy on 127.0.0.1, in front of one emulator.

Requests pass through to the upstream unless a fault is scripted for them: the next N
matching requests (`script`), or a share of them (`throttle`). Faults: an HTTP status with a
body, AWS's Throttling error, a connection reset, an answer that never comes, a truncated body,
a malformed body. `delay` holds every matching request for a while and then forwards it (a
slow cloud), recording when each was received and answered (`delayed`).
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

THROTTLING = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
    b"<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    b"</Error><RequestId>1</RequestId></ErrorResponse>"
)


@dataclass(frozen=True)
class Fault:
    kind: str  # status, throttle, reset, hang, truncate, malformed
    status: int = 503
    body: bytes = b"unavailable"
    seconds: float = 30.0
    match: str = ""  # a substring of the path or body the request must contain


@dataclass
class FaultProxy:
    upstream: str
    scripted: deque[Fault] = field(default_factory=deque)
    injected: list[str] = field(default_factory=list)
    forwarded: int = 0
    throttle_rate: float = 0.0
    throttle_match: str = ""
    delay_seconds: float = 0.0
    delay_match: str = ""
    # (received, answered) in time.time() seconds, for every delayed request
    delayed: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(1234)  # noqa: S311 - reproducible fault choice
        target = urllib.parse.urlsplit(self.upstream)
        self._host, self._port = target.hostname or "127.0.0.1", target.port or 80
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *faults: Fault) -> FaultProxy:
        with self._lock:
            self.scripted.extend(faults)
        return self

    def throttle(self, rate: float, match: str) -> FaultProxy:
        self.throttle_rate, self.throttle_match = rate, match
        return self

    def delay(self, seconds: float, match: str) -> FaultProxy:
        """Hold every request containing `match` for `seconds`, then forward it."""
        self.delay_seconds, self.delay_match = seconds, match
        return self

    def _delays(self, path: str, body: bytes) -> bool:
        text = path + "\n" + body.decode("utf-8", "replace")
        return bool(self.delay_seconds) and self.delay_match in text

    def __enter__(self) -> FaultProxy:
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

    def _choose(self, path: str, body: bytes) -> Fault | None:
        text = path + "\n" + body.decode("utf-8", "replace")
        with self._lock:
            for fault in list(self.scripted):
                if fault.match in text:
                    self.scripted.remove(fault)
                    self.injected.append(fault.kind)
                    return fault
            if (
                self.throttle_rate
                and self.throttle_match in text
                and self._random.random() < self.throttle_rate
            ):
                self.injected.append("throttle")
                return Fault("throttle")
            self.forwarded += 1
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length) if length else b""
                fault = proxy._choose(self.path, body)
                if fault is not None and fault.kind in ("reset", "hang"):
                    if fault.kind == "hang":
                        time.sleep(fault.seconds)
                    # An RST, not a polite FIN: the client sees "connection reset".
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "status":
                    self._reply(fault.status, fault.body)
                    return
                if fault is not None and fault.kind == "throttle":
                    self._reply(400, THROTTLING)
                    return
                if fault is not None and fault.kind == "malformed":
                    self._reply(200, b"<<<this is neither XML nor JSON")
                    return
                received = time.time()
                delayed = fault is None and proxy._delays(self.path, body)
                if delayed:
                    time.sleep(proxy.delay_seconds)
                upstream = http.client.HTTPConnection(proxy._host, proxy._port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                if fault is not None and fault.kind == "truncate":
                    self._reply(answer.status, data[: len(data) // 2], length=len(data))
                    return
                self._reply(answer.status, data)
                if delayed:
                    with proxy._lock:
                        proxy.delayed.append((received, time.time()))

            do_GET = do_POST = _relay

        return Handler

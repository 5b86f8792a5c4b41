"""Copy bytes both ways between two connected sockets: the body of a `CONNECT` tunnel and of
a TLS front. Bytes only: what flows (TLS records, HTTP) is the two ends' business."""

from __future__ import annotations

import selectors
import socket
import ssl

CHUNK = 65536


def relay(one: socket.socket, other: socket.socket, idle_seconds: float = 120.0) -> None:
    """Relay until either side closes, fails, or nothing moves for `idle_seconds`."""
    with selectors.DefaultSelector() as selector:
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        while True:
            ready = selector.select(timeout=idle_seconds)
            if not ready:
                return
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                if not _forward(source, key.data):
                    return


def _forward(source: socket.socket, target: socket.socket) -> bool:
    try:
        data = source.recv(CHUNK)
        # A TLS socket may hold decrypted bytes the selector cannot see: drain them now.
        while data and isinstance(source, ssl.SSLSocket) and source.pending():
            data += source.recv(source.pending())
    except OSError:  # ssl.SSLError is an OSError too
        return False
    if not data:
        return False
    try:
        target.sendall(data)
    except OSError:
        return False
    return True

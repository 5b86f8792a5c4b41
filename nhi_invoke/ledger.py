"""The audit ledger: JSON Lines, append-only, each line chained to the previous by SHA-256.

Parallel steps on one runner may share a ledger, so every append takes an exclusive lock,
computes `prev` from the file's real last line under that lock, and writes the line with a
single `write` on an `O_APPEND` descriptor.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from nhi_invoke.errors import ConfigError

SCHEMA_VERSION = 1
GENESIS = "0" * 64
_TAIL_CHUNK = 4096


def rfc3339(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.astimezone(UTC).microsecond // 1000:03d}Z"
    )


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _last_line(fd: int) -> bytes | None:
    end = os.lseek(fd, 0, os.SEEK_END)
    if end == 0:
        return None
    buffer = b""
    position = end
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        buffer = os.pread(fd, step, position) + buffer
        body = buffer.rstrip(b"\n")
        cut = body.rfind(b"\n")
        if cut >= 0:
            return body[cut + 1 :]
    return buffer.rstrip(b"\n") or None


class Ledger:
    """Appends events for one invocation to one ledger file."""

    def __init__(self, path: str, invocation_id: str, step_id: str) -> None:
        self.path = path
        self.invocation_id = invocation_id
        self.step_id = step_id
        self.head: str | None = None

    def _open(self) -> int:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot open the ledger {self.path}: {exc.strerror}",
                "pass --ledger a writable path (or set NHI_LEDGER)",
            ) from exc
        os.fchmod(fd, 0o600)
        return fd

    def append(self, event: str, moment: datetime, **fields: Any) -> str:
        """Write one event; returns its line hash (the new head of the chain)."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_line(fd)
            record = {
                "v": SCHEMA_VERSION,
                "time": rfc3339(moment),
                "event": event,
                "invocation_id": self.invocation_id,
                "step_id": self.step_id,
                "prev": line_hash(last) if last is not None else GENESIS,
                **fields,
            }
            line = json.dumps(record, separators=(",", ":"), default=str).encode()
            os.write(fd, line + b"\n")
        finally:
            os.close(fd)  # closing releases the lock
        self.head = line_hash(line)
        return self.head


def read(path: str) -> Iterator[tuple[int, bytes]]:
    """The ledger's lines with their 1-based numbers."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\n")


def verify_chain(path: str) -> int | None:
    """The number of the first line whose `prev` does not match, or None if intact."""
    previous = GENESIS
    for number, line in read(path):
        try:
            record = json.loads(line)
        except ValueError:
            return number
        if not isinstance(record, dict) or record.get("prev") != previous:
            return number
        previous = line_hash(line)
    return None

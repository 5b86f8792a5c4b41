"""The audit ledger on disk: JSON Lines, append-only, each line chained to the previous by
SHA-256 (and signed with an HMAC where a key is available).

Parallel steps on one runner may share a ledger, so every append takes an exclusive lock,
computes `prev` from the file's real last line under that lock, and writes the line with a
single `write` on an `O_APPEND` descriptor. Reading goes through `read()`, into typed records.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nhi_invoke.errors import ConfigError, RecordError
from nhi_invoke.ledger import private
from nhi_invoke.ledger.records import Entry, Record, rfc3339

if TYPE_CHECKING:
    from nhi_invoke.ledger.key import LedgerKey

SCHEMA_VERSION = 1
GENESIS = "0" * 64
_TAIL_CHUNK = 4096


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def serialize(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), default=str).encode()


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

    def __init__(
        self, path: str, invocation_id: str, step_id: str, key: LedgerKey | None = None
    ) -> None:
        self.path = path
        self.invocation_id = invocation_id
        self.step_id = step_id
        self.key = key
        self.head: str | None = None
        self._prepared = False

    def _open(self) -> int:
        if not self._prepared:
            # Once per ledger: create its folder 0700, refuse one another user could swap.
            private.prepare_folder(self.path)
            self._prepared = True
        try:
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot open the ledger {self.path}: {exc.strerror}", private.FIX
            ) from exc
        try:
            private.check_file(fd, self.path)
        except OSError as exc:
            os.close(fd)
            raise ConfigError(
                f"cannot open the ledger {self.path}: {exc.strerror}", private.FIX
            ) from exc
        except BaseException:
            os.close(fd)
            raise
        return fd

    def write(self, record: Record, moment: datetime) -> str:
        """Write one typed record; returns its line hash (the new head of the chain)."""
        return self.append(record.event, moment, **record.fields())

    def append(self, event: str, moment: datetime, **fields: Any) -> str:
        """Write one event; returns its line hash (the new head of the chain)."""
        fd = self._open()
        try:
            return self._append(fd, event, moment, fields)
        except OSError as exc:
            raise RecordError(
                f"cannot write to the ledger {self.path}: {exc.strerror}",
                "free space or fix the disk the ledger is on; every credential is still ended",
            ) from exc
        finally:
            os.close(fd)  # closing releases the lock

    def _append(self, fd: int, event: str, moment: datetime, fields: Mapping[str, Any]) -> str:
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
        line = serialize(record)
        if self.key is not None:
            # The HMAC covers the whole line, `prev` and the key id included, so a chain
            # recomputed without the key no longer verifies.
            record["key_id"] = self.key.key_id
            line = serialize(record)
            record["hmac"] = self.key.sign(line)
            line = serialize(record)
        data = line + b"\n"
        if os.write(fd, data) != len(data):
            raise OSError(errno.EIO, "a line was written only in part")
        self.head = line_hash(line)
        return self.head


def lines(path: str) -> Iterator[tuple[int, bytes]]:
    """The ledger's raw lines with their 1-based numbers."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\n")


def read(path: str) -> list[Entry]:
    """Every event of the ledger, typed; a line that is not an event is a configuration error
    that names it (`audit verify` says more)."""
    entries = []
    try:
        for number, line in lines(path):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                if not isinstance(raw, dict):
                    raise TypeError("not a JSON object")
                entries.append(Entry.parse(number, raw))
            except (ValueError, TypeError, KeyError) as exc:
                raise ConfigError(
                    f"line {number} of {path} is not a ledger event",
                    f"run 'nhi-invoke audit verify {path}'",
                ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read the ledger {path}: {exc.strerror}",
            "pass the ledger's path (--ledger or NHI_LEDGER; default: the one `run` writes)",
        ) from exc
    return entries

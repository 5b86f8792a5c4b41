"""The audit ledger: JSON Lines, append-only, each line chained to the previous by SHA-256.

Parallel steps on one runner may share a ledger, so every append takes an exclusive lock,
computes `prev` from the file's real last line under that lock, and writes the line with a
single `write` on an `O_APPEND` descriptor.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nhi_invoke.errors import ConfigError

if TYPE_CHECKING:
    from nhi_invoke.clouds.interface import Grant, Release
from nhi_invoke.ledger_key import LedgerKey

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

    def __init__(
        self, path: str, invocation_id: str, step_id: str, key: LedgerKey | None = None
    ) -> None:
        self.path = path
        self.invocation_id = invocation_id
        self.step_id = step_id
        self.key = key
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
            line = _serialize(record)
            if self.key is not None:
                # The HMAC covers the whole line, `prev` and the key id included, so a chain
                # recomputed without the key no longer verifies.
                record["key_id"] = self.key.key_id
                line = _serialize(record)
                record["hmac"] = self.key.sign(line)
                line = _serialize(record)
            os.write(fd, line + b"\n")
        finally:
            os.close(fd)  # closing releases the lock
        self.head = line_hash(line)
        return self.head


def record_release(ledger: Ledger, grant: Grant, release: Release, **extra: Any) -> None:
    """One credential's closing event: how it ended and how long it stayed usable."""
    event = "credential.revoked" if release.method != "expire" else "credential.expiring"
    ledger.append(
        event,
        datetime.now(UTC),
        cloud=grant.cloud,
        purpose=grant.purpose,
        principal=grant.principal,
        principal_id=grant.principal_id,
        access_key_id=grant.access_key_id,
        fingerprint=grant.fingerprint,
        expires_at=rfc3339(grant.expires_at),
        revocation=release.method,
        exposure_seconds=release.exposure_seconds,
        revocation_failure=release.failure,
        **extra,
        **release.detail,
    )


def _serialize(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), default=str).encode()


def read(path: str) -> Iterator[tuple[int, bytes]]:
    """The ledger's lines with their 1-based numbers."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\n")


@dataclass(frozen=True)
class Verification:
    """The result of checking a ledger."""

    lines: int
    head: str | None
    broken_line: int | None
    reason: str | None
    key_id: str | None  # the key the HMACs were checked with; None: chain only

    @property
    def ok(self) -> bool:
        return self.broken_line is None


def _hmac_problem(record: dict[str, Any], key: LedgerKey) -> str | None:
    claimed = record.pop("hmac", None)
    if claimed is None:
        return "has no HMAC (written without a key, or the HMAC was removed)"
    if record.get("key_id") != key.key_id:
        return f"was signed with key {record.get('key_id')}, not {key.key_id}"
    if not hmac.compare_digest(str(claimed), key.sign(_serialize(record))):
        return "has a wrong HMAC: it was changed after it was written"
    return None


def verify(
    path: str, key: LedgerKey | None = None, expected_head: str | None = None
) -> Verification:
    """Check every line's `prev` (and HMAC, with a key); report the first broken line."""
    previous, count, seen = GENESIS, 0, {GENESIS: 0}

    def broken(number: int, reason: str) -> Verification:
        return Verification(count, previous, number, reason, key.key_id if key else None)

    for number, line in read(path):
        count = number
        try:
            record = json.loads(line)
        except ValueError:
            return broken(number, "is not JSON")
        if not isinstance(record, dict):
            return broken(number, "is not a JSON object")
        if key is not None and (problem := _hmac_problem(dict(record), key)):
            return broken(number, problem)
        prev = record.get("prev")
        if prev != previous:
            if prev in seen and seen[prev] < number - 1:
                reason = (
                    f"follows line {seen[prev]}, not line {number - 1}: lines were "
                    "inserted or moved before it"
                )
            elif number > 1:
                reason = (
                    f"does not follow line {number - 1}: line {number - 1} was edited, "
                    "or a line before this one was deleted or moved"
                )
            else:
                reason = "is not the start of a ledger: lines before it were deleted"
            return broken(number, reason)
        previous = line_hash(line)
        seen[previous] = number
    if expected_head is not None and previous != expected_head:
        return broken(
            count,
            f"is not the head {expected_head[:16]}…: the ledger was cut or its last line changed",
        )
    return Verification(count, previous if count else None, None, None, key.key_id if key else None)

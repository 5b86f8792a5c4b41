"""Log files as users have them: a file, or a directory tree of them, gzipped or not."""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from nhi_invoke.audit.trace.model import Problem
from nhi_invoke.errors import ConfigError

GZIP_MAGIC = b"\x1f\x8b"
PEEK_BYTES = 65536
# CloudTrail delivers digest files beside the logs (`AWSLogs/<account>/CloudTrail-Digest/`):
# they describe log files and hold no events.
SKIPPED_DIRECTORIES = frozenset({"CloudTrail-Digest"})


@dataclass(frozen=True)
class LogFile:
    """One input file, and what its first bytes say it is."""

    path: str
    gzipped: bool
    size: int  # uncompressed bytes (a gzip file's own record of it)
    head: bytes  # the first bytes, decompressed

    @property
    def first_char(self) -> str:
        stripped = self.head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return chr(stripped[0]) if stripped else ""


def discover(paths: Iterable[str], suffixes: tuple[str, ...]) -> list[str]:
    """Each file given, and every file under each directory given whose name ends in a suffix."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRECTORIES)
                found += [os.path.join(root, f) for f in sorted(files) if f.endswith(suffixes)]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise ConfigError(
                f"the log {path} does not exist", "pass log files or directories holding them"
            )
    return list(dict.fromkeys(found))


def open_log(path: str) -> LogFile:
    """The file's kind and first bytes; raises OSError or ValueError when it cannot be read."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        gzipped = magic == GZIP_MAGIC
        if gzipped and size >= 18:
            # ISIZE: the last four bytes of a gzip member, its uncompressed length mod 2**32.
            handle.seek(-4, os.SEEK_END)
            size = int.from_bytes(handle.read(4), "little")
    if gzipped:
        try:
            with gzip.open(path, "rb") as stream:
                head = stream.read(PEEK_BYTES)
        except EOFError:
            head = _partial_head(path)
        except (OSError, zlib.error) as exc:
            raise ValueError("is not a readable gzip file") from exc
    else:
        with open(path, "rb") as handle:
            head = handle.read(PEEK_BYTES)
    return LogFile(path, gzipped, size, head)


def _partial_head(path: str) -> bytes:
    """What a truncated gzip file yields before its end (the reader reports the truncation)."""
    decompressor = zlib.decompressobj(wbits=31)
    with open(path, "rb") as handle:
        return decompressor.decompress(handle.read(PEEK_BYTES), PEEK_BYTES)


def open_logs(paths: Iterable[str]) -> tuple[list[LogFile], list[Problem]]:
    """Open each file (its kind and first bytes); unreadable files become problems."""
    logs, problems = [], []
    for path in paths:
        try:
            logs.append(open_log(path))
        except (OSError, ValueError) as exc:
            problems.append(Problem(path, f"{exc or 'cannot be read'}; skipped"))
    return logs, problems


def is_empty(log: LogFile) -> bool:
    """A whole file whose only list is empty: `{"Records": []}`, `{"Events": []}`, `[]`."""
    if log.size > len(log.head):
        return False
    try:
        value = json.loads(log.head)
    except ValueError:
        return False
    if isinstance(value, dict):
        lists = [item for item in value.values() if isinstance(item, list)]
        return bool(lists) and not any(lists)
    return isinstance(value, list) and not value

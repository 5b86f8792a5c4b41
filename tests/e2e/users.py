"""Another user, for the tests that play a hostile command or neighbour: `nobody` when the
tests run as root (as CI does). Folders such a user can reach live under /tmp, outside
pytest's own (root-only) temporary tree."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NOBODY = 65534


def is_root() -> bool:
    return os.geteuid() == 0


def require_root(why: str) -> None:
    """Skip where the tests cannot switch users (a developer's account); CI runs as root,
    where a missing capability is a failure, never a skip."""
    if is_root():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the tests as root: {why}")
    pytest.skip(f"needs root: {why}")


def as_user(uid: int) -> tuple[str, ...]:
    """A command prefix that runs what follows as `uid` (with its primary group only)."""
    return ("setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--")


def unprivileged() -> tuple[int, tuple[str, ...]]:
    """A user that is not root, and the prefix that runs a command as that user: `nobody`
    when we are root, else ourselves (already unprivileged)."""
    if is_root():
        return NOBODY, as_user(NOBODY)
    return os.getuid(), ()


@contextmanager
def folder_owned_by(uid: int, mode: int = 0o700) -> Iterator[Path]:
    """A fresh folder under /tmp owned by `uid` (reachable by every user), removed after."""
    path = Path(tempfile.mkdtemp(prefix="nhi-threat-", dir="/tmp"))
    try:
        os.chmod(path, mode)
        if uid != os.getuid():
            os.chown(path, uid, uid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def give(path: Path, uid: int, mode: int) -> Path:
    """Make `path` (a new folder, created) owned by `uid` with `mode`."""
    path.mkdir(exist_ok=True)
    os.chmod(path, mode)
    if uid != os.getuid():
        os.chown(path, uid, uid)
    return path

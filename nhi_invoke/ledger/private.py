"""The ledger's folder and file, checked rather than assumed.

Each folder level nhi-invoke creates is 0700 whatever the umask. The ledger's own folder must
belong to this user and be writable by no one else; every folder above it must be writable by
no one else either, unless it is sticky (as /tmp is: there, other users cannot move or delete
what is ours). Otherwise another user could swap the folder, and the ledger with it. The file
itself is opened without following links and must be a regular file of ours that no one else
may write. Every refusal is a configuration error (exit 78) naming the path and the fix.
"""

from __future__ import annotations

import os
import stat

from nhi_invoke.errors import ConfigError

FIX = "pass --ledger (or NHI_LEDGER) a path in a folder only you can write; nhi-invoke creates it"


def _mode(status: os.stat_result) -> str:
    return f"{stat.S_IMODE(status.st_mode):04o}"


def _ancestors(path: str) -> list[str]:
    """Every folder above `path`, nearest first."""
    found = []
    parent = os.path.dirname(path)
    while parent != path:
        found.append(parent)
        path, parent = parent, os.path.dirname(parent)
    return found


def _create(folder: str) -> None:
    """Create the missing levels of `folder`, each 0700 whatever the umask."""
    missing = []
    level = folder
    while not os.path.lexists(level):
        missing.append(level)
        level = os.path.dirname(level)
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            continue  # made meanwhile (a parallel step, or someone else): checked below
        os.chmod(level, 0o700)


def _check_ancestor(path: str) -> None:
    status = os.lstat(path)
    if stat.S_ISLNK(status.st_mode):
        return  # its target is checked on the resolved path
    if status.st_mode & 0o022 and not status.st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"the folder {path} above the ledger can be written by others and is not sticky "
            f"(mode {_mode(status)}): another user could replace the ledger's folder",
            FIX,
        )


def _check_own(folder: str, resolved: str) -> None:
    status = os.stat(resolved)
    if not stat.S_ISDIR(status.st_mode):
        raise ConfigError(f"the ledger's folder {folder} is not a folder", FIX)
    if status.st_uid != os.geteuid():
        raise ConfigError(
            f"the ledger's folder {folder} belongs to uid {status.st_uid}, not to this user "
            f"(uid {os.geteuid()})",
            FIX,
        )
    if status.st_mode & 0o022:
        raise ConfigError(
            f"the ledger's folder {folder} can be written by others (mode {_mode(status)})",
            f"chmod 700 {folder}, or {FIX}",
        )


def prepare_folder(path: str) -> None:
    """Create the ledger's folder if needed and check it and every folder above it."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        _create(folder)
        resolved = os.path.realpath(folder)
        _check_own(folder, resolved)
        for above in {*_ancestors(folder), *_ancestors(resolved)}:
            _check_ancestor(above)
    except OSError as exc:
        raise ConfigError(
            f"cannot open the ledger {path}: its folder {exc.filename or folder}: {exc.strerror}",
            FIX,
        ) from exc


def check_file(fd: int, path: str) -> None:
    """The opened ledger: a regular file of ours that no one else may write; made 0600."""
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"the ledger {path} is not a regular file", FIX)
    if status.st_uid != os.geteuid():
        raise ConfigError(
            f"the ledger {path} belongs to uid {status.st_uid}, not to this user "
            f"(uid {os.geteuid()})",
            FIX,
        )
    if status.st_mode & 0o022:
        raise ConfigError(
            f"the ledger {path} can be written by others (mode {_mode(status)})",
            f"chmod 600 {path}, or {FIX}",
        )
    if stat.S_IMODE(status.st_mode) != 0o600:
        os.fchmod(fd, 0o600)

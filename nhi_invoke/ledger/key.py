"""The ledger's HMAC key: from a key file or a file descriptor, `NHI_LEDGER_KEY`, or the OS
keyring on a workstation.

A key file (`--ledger-key-file PATH`, or `fd:N` for a descriptor nhi-invoke reads once and
closes) keeps the key out of nhi-invoke's environment; the variable stays supported and is
removed from the command's environment. Neither may come from a repository's config file.

keyring is imported only when `nhi-invoke audit key init` left a marker saying a key was
stored, so that runs on headless CI (where no keyring backend exists) never pay for it. Where
the marker is, the key must load: a configured key that cannot be read is an error, never a
silent fall back to the hash chain alone.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from nhi_invoke.errors import ConfigError

ENV_VARIABLE = "NHI_LEDGER_KEY"
FILE_VARIABLE = "NHI_LEDGER_KEY_FILE"
FD_PREFIX = "fd:"
KEYRING_SERVICE = "nhi-invoke"
KEYRING_USERNAME = "ledger-key"
MIN_KEY_LENGTH = 16
_MAX_KEY_BYTES = 4096
_FD_HINT = 'pass a descriptor of 3 or above that holds the key, e.g. fd:3 with 3<<<"$KEY"'


@dataclass(frozen=True)
class LedgerKey:
    """A secret key and its public id (a fingerprint, so lines name the key they used)."""

    secret: bytes
    source: str

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.secret).hexdigest()[:12]

    def sign(self, payload: bytes) -> str:
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"LedgerKey({self.key_id} from {self.source})"


def _marker(environ: Mapping[str, str]) -> str:
    state = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "nhi-invoke", "keyring-key-id")


def descriptor(source: str) -> int | None:
    """N for `fd:N` (checked: 3 or above), None for a path."""
    if not source.startswith(FD_PREFIX):
        return None
    number = source.removeprefix(FD_PREFIX)
    if not number.isdigit() or int(number) < 3:
        raise ConfigError(
            f"the ledger key source {source!r} is not fd:N with N of 3 or above "
            "(0-2 are the command's stdin, stdout and stderr)",
            _FD_HINT,
        )
    return int(number)


def checked_source(source: str) -> str:
    """A key source as given (`fd:N` or a path), its form checked without reading it."""
    if not source.strip():
        raise ConfigError("the ledger key file is empty", "pass --ledger-key-file PATH or fd:N")
    descriptor(source)
    return source


def _private(status: os.stat_result, label: str) -> None:
    """A key file must be ours (or root's) and readable by nobody else."""
    if status.st_uid not in (os.geteuid(), 0):
        raise ConfigError(
            f"the ledger key file {label} belongs to uid {status.st_uid}, not to this user",
            "keep the key in a file of your own, mode 0600",
        )
    if status.st_mode & 0o077:
        raise ConfigError(
            f"the ledger key file {label} is open to others "
            f"(mode {stat.S_IMODE(status.st_mode):04o})",
            f"chmod 600 {label}",
        )


def _read_all(fd: int, label: str) -> bytes:
    chunks = []
    size = 0
    while chunk := os.read(fd, 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_KEY_BYTES:
            raise ConfigError(
                f"the ledger key from {label} is longer than {_MAX_KEY_BYTES} bytes",
                "give the key alone, e.g. from 'openssl rand -hex 32'",
            )
    return b"".join(chunks)


def _read(source: str) -> bytes:
    number = descriptor(source)
    try:
        if number is not None:
            try:
                status = os.fstat(number)
            except OSError as exc:
                raise ConfigError(f"{source}: descriptor {number} is not open", _FD_HINT) from exc
            fd = number
        else:
            # Symbolic links are followed (a mounted secret is often one); the file read is
            # checked, not the name.
            fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                os.close(fd)
                raise ConfigError(
                    f"the ledger key file {source} is not a regular file",
                    "pass a file holding the key, or fd:N for a pipe",
                )
        try:
            if stat.S_ISREG(status.st_mode):
                _private(status, source)
            return _read_all(fd, source)
        finally:
            # Read once and closed: the command cannot read a pipe again, nor inherit it.
            os.close(fd)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the ledger key from {source}: {exc.strerror}",
            "pass --ledger-key-file a readable file (mode 0600), or fd:N",
        ) from exc


def _long_enough(secret: bytes, label: str) -> bytes:
    if len(secret) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"the ledger key from {label} is shorter than {MIN_KEY_LENGTH} characters",
            "use a random value, e.g. from 'openssl rand -hex 32'",
        )
    return secret


def _from_keyring(environ: Mapping[str, str]) -> LedgerKey | None:
    marker = _marker(environ)
    if not os.path.exists(marker):
        return None
    fix = f"make the OS keyring available, or delete {marker} to write ledgers without an HMAC"
    try:
        import keyring  # noqa: PLC0415 - only where a key was stored
    except ImportError as exc:
        raise ConfigError(
            f"a ledger key is kept in the OS keyring ({marker}), but keyring cannot be "
            f"imported ({type(exc).__name__})",
            fix,
        ) from exc
    try:
        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except Exception as exc:
        # Backends raise their own errors (D-Bus, locked keychains), not only KeyringError.
        raise ConfigError(
            f"a ledger key is kept in the OS keyring ({marker}), but the keyring cannot be "
            f"read ({type(exc).__name__})",
            fix,
        ) from exc
    if not stored:
        raise ConfigError(
            f"the OS keyring holds no ledger key, though {marker} says one was stored",
            f"run 'nhi-invoke audit key init' again, or delete {marker}",
        )
    return LedgerKey(stored.encode(), "keyring")


def load(environ: Mapping[str, str], key_file: str | None = None) -> LedgerKey | None:
    """The key from the one source configured: a key file (`key_file`, else
    NHI_LEDGER_KEY_FILE: a path or fd:N), NHI_LEDGER_KEY, or the OS keyring where
    `audit key init` stored one. None when none is; a configured key that cannot be loaded
    is a configuration error."""
    source = key_file or environ.get(FILE_VARIABLE) or None
    value = environ.get(ENV_VARIABLE)
    if source is not None and value:
        raise ConfigError(
            f"both {ENV_VARIABLE} and a ledger key file ({source}) are given",
            f"give the key one way: --ledger-key-file (or {FILE_VARIABLE}), or {ENV_VARIABLE}",
        )
    if source is not None:
        secret = _long_enough(_read(checked_source(source)).strip(), source)
        return LedgerKey(secret, "fd" if source.startswith(FD_PREFIX) else "file")
    if value:
        return LedgerKey(_long_enough(value.encode(), ENV_VARIABLE), ENV_VARIABLE)
    return _from_keyring(environ)


def init(environ: Mapping[str, str]) -> LedgerKey:
    """Create a key in the OS keyring (or return the one there)."""
    fix = f"set {ENV_VARIABLE} (or --ledger-key-file) instead; the hash chain works without a key"
    try:
        import keyring  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError(f"keyring cannot be imported ({type(exc).__name__})", fix) from exc
    try:
        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
        if not stored:
            import secrets  # noqa: PLC0415 - only to make a key

            stored = secrets.token_hex(32)
            keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, stored)
    except Exception as exc:
        raise ConfigError(f"no usable OS keyring ({type(exc).__name__})", fix) from exc
    key = LedgerKey(stored.encode(), "keyring")
    marker = _marker(environ)
    os.makedirs(os.path.dirname(marker), mode=0o700, exist_ok=True)
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key.key_id + "\n")
    return key

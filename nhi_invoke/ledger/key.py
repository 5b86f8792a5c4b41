"""The ledger's HMAC key: `NHI_LEDGER_KEY` in CI, the OS keyring on a workstation.

keyring is imported only when `nhi-invoke audit key init` left a marker saying a key was
stored, so that runs on headless CI (where no keyring backend exists) never pay for it and
never fail because of it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from nhi_invoke.errors import ConfigError

ENV_VARIABLE = "NHI_LEDGER_KEY"
KEYRING_SERVICE = "nhi-invoke"
KEYRING_USERNAME = "ledger-key"
MIN_KEY_LENGTH = 16


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


def load(environ: Mapping[str, str]) -> LedgerKey | None:
    """The key, or None when there is none (the chain alone is used then)."""
    value = environ.get(ENV_VARIABLE)
    if value:
        if len(value) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{ENV_VARIABLE} is shorter than {MIN_KEY_LENGTH} characters",
                "use a random value, e.g. from 'openssl rand -hex 32'",
            )
        return LedgerKey(value.encode(), ENV_VARIABLE)
    if not os.path.exists(_marker(environ)):
        return None
    try:
        import keyring  # noqa: PLC0415 - only where a key was stored
        import keyring.errors  # noqa: PLC0415

        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except (ImportError, keyring.errors.KeyringError):
        return None
    return LedgerKey(stored.encode(), "keyring") if stored else None


def init(environ: Mapping[str, str]) -> LedgerKey:
    """Create a key in the OS keyring (or return the one there)."""
    try:
        import keyring  # noqa: PLC0415
        import keyring.errors  # noqa: PLC0415

        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
        if not stored:
            stored = secrets.token_hex(32)
            keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, stored)
    except keyring.errors.KeyringError as exc:
        raise ConfigError(
            f"no usable OS keyring ({type(exc).__name__})",
            f"set {ENV_VARIABLE} from your CI's secrets instead; the hash chain works without "
            "a key",
        ) from exc
    key = LedgerKey(stored.encode(), "keyring")
    marker = _marker(environ)
    os.makedirs(os.path.dirname(marker), mode=0o700, exist_ok=True)
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write(key.key_id + "\n")
    return key

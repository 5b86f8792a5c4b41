"""The values a broker hands back: a secret, a grant (one credential), a release (its end)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from nhi_invoke.errors import NhiError

# Purposes of a grant: the credential the command gets, and a hop only nhi-invoke itself uses.
CHILD = "child"
ENTRY = "entry"
# How a credential ends when nothing revokes it.
EXPIRE = "expire"


class Secret:
    """A secret string that never shows itself in a repr, a log or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        import hashlib  # noqa: PLC0415 - OpenSSL's bindings when a secret is fingerprinted

        return "sha256:" + hashlib.sha256(self._value.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Secret({self.fingerprint[:15]}…)"

    __str__ = __repr__


@dataclass(frozen=True)
class Grant:
    """One credential issued for this invocation.

    `purpose` is CHILD for the credential the command gets, ENTRY (or another name) for one
    that only nhi-invoke itself uses, such as the first hop of a chain.
    """

    broker: str  # the registry name of the broker that issued it
    purpose: str
    principal: str  # who the credential acts as (a role session, an account, a token's owner)
    principal_id: str | None  # a stable id of that principal, where revocation needs one
    session_name: str | None
    access_key_id: str | None  # a public key id (not secret), where the source has one
    expires_at: datetime
    fingerprint: str  # of the credential's secret: names it without revealing it
    environment: Mapping[str, Secret] = field(default_factory=dict)
    details: Mapping[str, object] = field(default_factory=dict)
    # Secrets of this credential that the child does not get (masked all the same).
    hidden: tuple[Secret, ...] = ()

    @property
    def secrets(self) -> tuple[Secret, ...]:
        return (*self.environment.values(), *self.hidden)

    def child_environment(self) -> dict[str, str]:
        return {name: secret.reveal() for name, secret in self.environment.items()}


@dataclass(frozen=True)
class Release:
    """How one credential ended: revoked (and how), or left to expire (and why)."""

    method: str  # EXPIRE, or the broker's name for how it revoked (e.g. "deny-policy")
    exposure_seconds: float  # how long it stayed usable after the command ended
    detail: Mapping[str, object] = field(default_factory=dict)
    failure: str | None = None  # why a revocation that was asked for did not happen
    # The error behind `failure`, for a caller that exits with its code (`nhi-invoke revoke`).
    error: NhiError | None = field(default=None, compare=False)

    @property
    def revoked(self) -> bool:
        return self.method != EXPIRE


def expiring(
    grant: Grant, ended_at: datetime, *, reason: str | None = None, error: NhiError | None = None
) -> Release:
    """The release of a credential left to expire: it stays usable until then. `error` says
    why a revocation that was asked for did not happen."""
    exposure = max(0.0, (grant.expires_at - ended_at).total_seconds())
    detail = {"reason": reason} if reason else {}
    failure = error.one_line() if error is not None else None
    return Release(EXPIRE, round(exposure, 3), detail, failure, error)


# Asks the CI for a (fresh, when True) OIDC token, already pre-flight checked.
TokenSupplier = Callable[[bool], str]
# Called with each grant the moment it exists, so a failure later still records it.
GrantRecorder = Callable[[Grant], None]

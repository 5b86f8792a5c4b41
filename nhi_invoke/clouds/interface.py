"""The contract of a credential broker, and the values it hands back."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from nhi_invoke.retry import RetryOutcome


class Secret:
    """A secret string that never shows itself in a repr, a log or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        return "sha256:" + hashlib.sha256(self._value.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Secret({self.fingerprint[:15]}…)"

    __str__ = __repr__


@dataclass(frozen=True)
class Grant:
    """One credential issued for this invocation.

    `purpose` is "child" for the credential the command gets, "entry" for a hop that only
    nhi-invoke itself used (the chained mode's first session).
    """

    cloud: str
    purpose: str
    principal: str  # the ARN or service account the credential acts as
    principal_id: str | None  # AWS AssumedRoleId (ROLEID:session), used by revocation
    session_name: str | None
    access_key_id: str | None  # not secret; CloudTrail shows it
    expires_at: datetime
    fingerprint: str  # of the credential's token: names it without revealing it
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
    """How one credential ended: revoked (and when), or left to expire (and why)."""

    method: str  # "deny-policy" or "expire"
    exposure_seconds: float  # how long it stayed usable after the command ended
    detail: Mapping[str, object] = field(default_factory=dict)
    failure: str | None = None  # why a revocation that was asked for did not happen


def expiring(
    grant: Grant, ended_at: datetime, *, reason: str | None = None, failure: str | None = None
) -> Release:
    """The release of a credential left to expire: it stays usable until then."""
    exposure = max(0.0, (grant.expires_at - ended_at).total_seconds())
    detail = {"reason": reason} if reason else {}
    return Release("expire", round(exposure, 3), detail, failure)


# Asks the CI for a (fresh, when True) OIDC token, already pre-flight checked.
TokenSupplier = Callable[[bool], str]
# Called with each grant the moment it exists, so a failure later still records it.
GrantRecorder = Callable[[Grant], None]


class CredentialBroker(Protocol):
    """Issues one invocation's credentials for one cloud."""

    cloud: str
    audience: str  # the OIDC token audience this cloud trusts
    retries: RetryOutcome

    def issue(self, token: TokenSupplier, record: GrantRecorder) -> Grant:
        """Exchange the OIDC token; return the credential the command gets."""
        ...

    def release(
        self, grant: Grant, ended_at: datetime, token: TokenSupplier, record: GrantRecorder
    ) -> Release:
        """End one credential this broker issued as early as the cloud allows. Never raises:
        cleanup must reach every credential; a failure is reported in the release."""
        ...

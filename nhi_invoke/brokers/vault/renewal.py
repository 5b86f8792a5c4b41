"""Keeping the token (and the leases read with it) alive while the command runs: each is
renewed when half its time has passed, by the TTL it was granted (the token by at most
--vault-ttl), until the role's (or the lease's) max TTL caps it; that end is reported.

A renewal that fails for a moment (Vault unreachable, sealed, 5xx) is tried again soon;
one Vault refuses for good (the token revoked, the policy without renew) ends renewal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.brokers.vault.api import Answer, VaultApi
from nhi_invoke.brokers.vault.reads import Lease
from nhi_invoke.errors import NhiError
from nhi_invoke.retry import Retryable

RETRY_AT_MOST_SECONDS = 10.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Held:
    """Something renewable nhi-invoke holds for the command: the token, or one lease."""

    name: str  # for messages: "the Vault token", "the lease of database/creds/readonly"
    increment: int  # asked for at each renewal, in seconds
    expires_at: datetime
    renew_at: datetime | None  # None: no longer renewed
    renewals: int = 0
    ended: str | None = None  # why renewal ended, if it did
    lease: Lease | None = None  # None: the token

    def schedule(self, now: datetime, granted: int) -> None:
        self.expires_at = now + timedelta(seconds=granted)
        self.renew_at = now + timedelta(seconds=granted / 2)

    def stop(self, why: str) -> None:
        self.ended = why
        self.renew_at = None

    def retry_soon(self, now: datetime) -> None:
        left = (self.expires_at - now).total_seconds()
        if left <= 0:
            self.stop("it expired while renewal failed")
            return
        self.renew_at = now + timedelta(seconds=min(RETRY_AT_MOST_SECONDS, max(0.5, left / 4)))


@dataclass
class Renewer:
    """The token and the leases, each renewed when due."""

    api: VaultApi
    token: Secret
    held: Held
    leases: list[Held] = field(default_factory=list)
    clock: Callable[[], datetime] = _now

    def next_due(self) -> datetime | None:
        due = [h.renew_at for h in (self.held, *self.leases) if h.renew_at is not None]
        return min(due) if due else None

    def renew(self) -> tuple[bool, list[str]]:
        """Renew what is due; whether anything changed, and warnings for the user."""
        warnings: list[str] = []
        changed = False
        for item in (self.held, *self.leases):
            now = self.clock()
            if item.renew_at is None or item.renew_at > now:
                continue
            if item.lease is not None and self._outlives_token(item):
                item.stop("it outlives the token, whose renewal has ended")
                continue
            changed |= self._renew(item, now, warnings)
        return changed, warnings

    def _outlives_token(self, item: Held) -> bool:
        return self.held.renew_at is None and item.expires_at >= self.held.expires_at

    def _call(self, item: Held) -> Answer:
        if item.lease is None:
            return self.api.once(
                "POST", "auth/token/renew-self", self.token, {"increment": item.increment}
            )
        body = {"lease_id": item.lease.lease_id, "increment": item.increment}
        return self.api.once("PUT", "sys/leases/renew", self.token, body)

    def _renew(self, item: Held, now: datetime, warnings: list[str]) -> bool:
        try:
            answer = self._call(item)
        except (Retryable, NhiError) as failure:
            item.retry_soon(now)
            warnings.append(f"warning: could not renew {item.name} ({failure}); trying again")
            return False
        if answer.status != 200:
            return self._refused(item, answer, now, warnings)
        source = answer.section("auth") if item.lease is None else answer.body
        granted = int(source.get("lease_duration") or 0)
        item.renewals += 1
        item.schedule(now, granted)
        if granted < item.increment:
            cause = "; ".join(answer.warnings) or f"Vault granted {granted} s"
            item.stop(f"its max TTL: {cause}")
            warnings.append(
                f"warning: {item.name} reached its max TTL and is not renewed again; it "
                f"expires at {item.expires_at:%H:%M:%S}Z ({cause})"
            )
        return True

    def _refused(self, item: Held, answer: Answer, now: datetime, warnings: list[str]) -> bool:
        if answer.status == 429 or answer.status >= 500:
            item.retry_soon(now)
            return False
        if answer.token_invalid:
            why = "Vault refuses the token: it was revoked (by the command?) or has expired"
        elif answer.policy_denied:
            path = "auth/token/renew-self" if item.lease is None else "sys/leases/renew"
            why = f"the token's policies do not allow update on {path}"
        else:
            why = f"Vault answered HTTP {answer.status}: {answer.error_text[:200]}"
        item.stop(why)
        if item.lease is None and answer.token_invalid:
            for lease in self.leases:  # they ended with the token
                lease.stop("the token no longer works")
        warnings.append(
            f"warning: {item.name} is no longer renewed ({why}); it expires at "
            f"{item.expires_at:%H:%M:%S}Z"
        )
        return True

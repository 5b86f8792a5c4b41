"""The ledger read back as invocations: what each issued, and what is still open."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nhi_invoke.ledger.endings import InvocationFinished
from nhi_invoke.ledger.records import (
    CredentialClosed,
    CredentialIssued,
    CredentialUpdated,
    Entry,
    InvocationStarted,
)


@dataclass(frozen=True)
class InvocationHistory:
    """Every event of one invocation, in ledger order."""

    invocation_id: str
    entries: tuple[Entry, ...]

    @property
    def step_id(self) -> str:
        return self.entries[0].step_id

    @property
    def started(self) -> InvocationStarted | None:
        return next(
            (e.record for e in self.entries if isinstance(e.record, InvocationStarted)), None
        )

    @property
    def started_at(self) -> datetime:
        return next(
            (e.time for e in self.entries if isinstance(e.record, InvocationStarted)),
            self.entries[0].time,
        )

    @property
    def last_seen(self) -> datetime:
        """When the invocation last wrote anything (a crash came after it)."""
        return self.entries[-1].time

    @property
    def issued(self) -> list[tuple[datetime, CredentialIssued]]:
        """Each credential when it was issued, as its last update left it (a renewal's
        expiry, what was obtained with it)."""
        latest = {
            e.record.fingerprint: e.record
            for e in self.entries
            if isinstance(e.record, CredentialUpdated)
        }
        return [
            (e.time, _updated(e.record, latest.get(e.record.fingerprint)))
            for e in self.entries
            if isinstance(e.record, CredentialIssued)
        ]

    @property
    def finished(self) -> InvocationFinished | None:
        return next(
            (e.record for e in self.entries if isinstance(e.record, InvocationFinished)), None
        )

    def closing(self, fingerprint: str) -> CredentialClosed | None:
        """How the credential with this fingerprint ended, if the ledger says."""
        return next(
            (
                e.record
                for e in self.entries
                if isinstance(e.record, CredentialClosed) and e.record.fingerprint == fingerprint
            ),
            None,
        )

    def open_credentials(self) -> list[CredentialIssued]:
        """Credentials issued and neither revoked nor recorded as expiring."""
        closed = {
            e.record.fingerprint for e in self.entries if isinstance(e.record, CredentialClosed)
        }
        return [issued for _, issued in self.issued if issued.fingerprint not in closed]


def _updated(issued: CredentialIssued, update: CredentialUpdated | None) -> CredentialIssued:
    if update is None:
        return issued
    return issued._replace(
        expires_at=update.now.expires_at, details={**issued.details, **update.now.details}
    )


def invocations(entries: Sequence[Entry]) -> list[InvocationHistory]:
    """The ledger's invocations, in the order they first appear."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(entry.invocation_id, []).append(entry)
    return [InvocationHistory(i, tuple(found)) for i, found in grouped.items()]

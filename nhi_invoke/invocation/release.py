"""Ending an invocation's credentials, each the way its broker allows, and recording how:
shared by a run's close (`flow.py`) and by `nhi-invoke revoke`'s recovery (`recovery.py`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from nhi_invoke.brokers.grants import CHILD, Grant, Release, expiring
from nhi_invoke.brokers.interface import CredentialBroker
from nhi_invoke.errors import RecordError
from nhi_invoke.figures import moment
from nhi_invoke.invocation.journal import Journal
from nhi_invoke.ledger.records import CredentialClosed


def release_all(
    journal: Journal,
    runtimes: Mapping[str, CredentialBroker],
    audiences: Mapping[str, tuple[str, str | None]],
    ended: datetime,
    *,
    recovering: bool = False,
    warn: Callable[[str], None] = lambda text: None,
) -> list[tuple[Grant, Release]]:
    """End every credential of the journal, each the way its broker allows, and record how.

    The command's credentials go first (they are what revocation protects); a revocation
    may mint a fresh credential (an entry session), which is then recorded and ended like
    the rest. A grant without a broker to call (recovery only) is recorded with its expiry.
    """
    released: list[tuple[Grant, Release]] = []
    done = 0
    while done < len(journal.grants):
        batch = sorted(journal.grants[done:], key=lambda g: g.purpose != CHILD)
        done = len(journal.grants)
        for grant in batch:
            runtime = runtimes.get(grant.broker)
            if runtime is None:
                # Nothing to call (a single hop's session, or a broker not installed here).
                release = expiring(grant, ended, reason="recorded by nhi-invoke revoke")
            else:
                audience, flag = audiences[grant.broker]
                end = runtime.recover if recovering else runtime.release
                release = end(
                    grant, ended, journal.tokens(audience, flag), journal.recorder(audience)
                )
            released.append((grant, release))
            extra = {"recovered": True} if recovering else {}
            journal.write(CredentialClosed.of(grant, release, **extra))
            if release.failure is not None:
                warn(
                    f"warning: {grant.principal} could not be revoked; it stays usable until "
                    f"{moment(grant.expires_at)} ({release.failure})"
                )
    return released


def unrecorded(journal: Journal) -> RecordError | None:
    """The ledger lines a journal lost, as one error (None when it lost none)."""
    failure = journal.ledger_failure
    if failure is None:
        return None
    lines = (
        "1 ledger line was" if journal.unwritten == 1 else f"{journal.unwritten} ledger lines were"
    )
    return RecordError(
        f"{lines} not written ({failure.message}); every credential was still ended",
        failure.hint,
    )

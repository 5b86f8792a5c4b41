"""Renewal while the command runs (`invocation/renewal.py`) and the journal's record of an
updated grant, with brokers implementing the interface (no patching) and a real ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nhi_invoke.brokers.grants import CHILD, Grant, GrantRecorder, Release, Secret, TokenSupplier
from nhi_invoke.brokers.interface import CredentialBroker
from nhi_invoke.ci.interface import NoReporting
from nhi_invoke.invocation.journal import Journal
from nhi_invoke.invocation.renewal import Renewals
from nhi_invoke.ledger import history, store
from nhi_invoke.ledger.store import Ledger
from nhi_invoke.retry import RetryOutcome, RetryPolicy


def _now() -> datetime:
    return datetime.now(UTC)


class NoTokens:
    description = "none"

    def fetch(self, audience: str) -> str:
        raise AssertionError("renewal needs no OIDC token here")


class Renewing(CredentialBroker):
    """A credential renewed `times` times, each time for ten more seconds."""

    def __init__(self, plan: Any = None, policy: RetryPolicy | None = None, times: int = 2) -> None:
        self.retries = RetryOutcome()
        self.times = times
        self.secret = Secret("renewable-secret-value")
        self.grant = Grant(
            broker="renewing",
            purpose=CHILD,
            principal="someone",
            principal_id=None,
            session_name=None,
            access_key_id=None,
            expires_at=_now() + timedelta(seconds=10),
            fingerprint=self.secret.fingerprint,
            environment={"RENEWING_TOKEN": self.secret},
        )
        self.due: datetime | None = _now()
        self.renewed = threading.Event()

    def issue(self, tokens: TokenSupplier, record: GrantRecorder) -> Grant:
        record(self.grant)
        return self.grant

    def release(
        self, grant: Grant, ended_at: datetime, tokens: TokenSupplier, record: GrantRecorder
    ) -> Release:
        return Release("revoked", 0.0)

    def next_renewal(self) -> datetime | None:
        return self.due

    def renew(self, record: GrantRecorder) -> tuple[str, ...]:
        self.times -= 1
        self.grant = Grant(
            **{**self.grant.__dict__, "expires_at": self.grant.expires_at + timedelta(seconds=10)}
        )
        record(self.grant)
        if self.times == 0:
            self.due = None
            self.renewed.set()
            return ("warning: renewing reached its max TTL",)
        self.due = _now() + timedelta(milliseconds=20)
        return ()


class Broken(Renewing):
    def renew(self, record: GrantRecorder) -> tuple[str, ...]:
        raise RuntimeError("a bug")


class Spinning(Renewing):
    def renew(self, record: GrantRecorder) -> tuple[str, ...]:
        self.renewed.set()
        return ()  # and still due now: would spin


def _journal(tmp_path: Path) -> Journal:
    ledger = Ledger(str(tmp_path / "ledger.jsonl"), "inv1", "step")
    return Journal(ledger, NoTokens(), NoReporting())


def _renewals(
    journal: Journal, brokers: dict[str, CredentialBroker], warnings: list[str]
) -> Renewals:
    recorder: Callable[[str], GrantRecorder] = lambda name: journal.recorder("aud")  # noqa: E731
    return Renewals(brokers, recorder, warnings.append)


def test_a_renewed_grant_replaces_the_issued_one_and_the_ledger_notes_the_update(
    tmp_path: Path,
) -> None:
    journal = _journal(tmp_path)
    broker = Renewing()
    broker.issue(lambda fresh: "", journal.recorder("aud"))
    warnings: list[str] = []
    renewals = _renewals(journal, {"renewing": broker}, warnings)
    assert renewals.start()
    assert broker.renewed.wait(10)
    renewals.stop()
    assert warnings == ["warning: renewing reached its max TTL"]
    assert len(journal.grants) == 1
    assert journal.grants[0].expires_at == broker.grant.expires_at
    events = [e.event for e in store.read(str(tmp_path / "ledger.jsonl"))]
    assert events == ["credential.issued", "credential.updated", "credential.updated"]
    (found,) = history.invocations(store.read(str(tmp_path / "ledger.jsonl")))
    ((_, issued),) = found.issued
    assert issued.expires_at.replace(microsecond=0) == broker.grant.expires_at.replace(
        microsecond=0
    )
    assert "renewable-secret-value" not in (tmp_path / "ledger.jsonl").read_text()


def test_nothing_renewable_starts_no_thread(tmp_path: Path) -> None:
    broker = Renewing()
    broker.due = None
    renewals = _renewals(_journal(tmp_path), {"renewing": broker}, [])
    assert not renewals.start()
    renewals.stop()  # harmless


def test_stop_ends_the_wait_for_a_renewal_far_ahead(tmp_path: Path) -> None:
    broker = Renewing()
    broker.due = _now() + timedelta(hours=1)
    renewals = _renewals(_journal(tmp_path), {"renewing": broker}, [])
    assert renewals.start()
    thread = renewals._thread
    renewals.stop()
    assert thread is not None
    assert not thread.is_alive()
    assert broker.times == 2  # never called


def test_a_broker_whose_renewal_raises_is_dropped_with_a_warning(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    broken, working = Broken(), Renewing(times=1)
    working.issue(lambda fresh: "", journal.recorder("aud"))
    warnings: list[str] = []
    renewals = _renewals(journal, {"broken": broken, "working": working}, warnings)
    renewals.start()
    assert working.renewed.wait(10)
    renewals.stop()
    assert "warning: renewing the broken credentials failed (RuntimeError)" in warnings


def test_a_broker_due_again_at_once_is_dropped_instead_of_spinning(tmp_path: Path) -> None:
    spinning = Spinning()
    renewals = _renewals(_journal(tmp_path), {"spinning": spinning}, [])
    renewals.start()
    assert spinning.renewed.wait(10)
    thread = renewals._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()  # it ran out of brokers to renew


def test_recording_a_grant_again_masks_what_it_gained(tmp_path: Path) -> None:
    masked: list[str] = []

    class Masking(NoReporting):
        def mask(self, value: str, *, own_line: bool = False) -> None:
            masked.append(value)

    journal = Journal(Ledger(str(tmp_path / "l.jsonl"), "i", "s"), NoTokens(), Masking())
    record = journal.recorder("aud")
    broker = Renewing()
    record(broker.grant)
    value = Secret("read-after-issue")
    record(Grant(**{**broker.grant.__dict__, "environment": {"SECRET": value}}))
    assert masked == ["renewable-secret-value", "read-after-issue"]
    assert [g.environment for g in journal.grants] == [{"SECRET": value}]

"""`nhi-invoke audit show`: one row per invocation, from the ledger alone (its typed records)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nhi_invoke import brokers
from nhi_invoke.brokers.grants import CHILD
from nhi_invoke.ledger import history, store
from nhi_invoke.ledger.endings import CommandExited
from nhi_invoke.ledger.records import InvocationStarted, rfc3339
from nhi_invoke.tasks.context import TaskContext


@dataclass(frozen=True)
class CredentialRow:
    """One credential: who it was, when it ends, how it ended, how long it stayed usable."""

    cloud: str
    purpose: str
    principal: str
    issued: str
    expires_at: str
    ended: str  # revoked, expired, expiring (still usable), open (never closed)
    exposure_seconds: float | None
    shown_principal: str = ""  # as the broker writes it for people

    def as_dict(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "purpose": self.purpose,
            "principal": self.principal,
            "issued": self.issued,
            "expires_at": self.expires_at,
            "ended": self.ended,
            "exposure_seconds": self.exposure_seconds,
        }


@dataclass(frozen=True)
class InvocationRow:
    invocation_id: str
    step_id: str
    ci_run: str
    started: str
    exit_code: int | None
    finished: bool
    credentials: tuple[CredentialRow, ...] = field(default=())
    task: TaskContext | None = None  # an agent's task, when the invocation named one
    # How a Python API block ended: return, exception, cancelled, closed, interpreter-exit.
    ended_by: str | None = None

    @property
    def ended(self) -> str:
        """How the invocation's command credentials ended, worst first."""
        states = {c.ended for c in self.credentials if c.purpose == CHILD}
        for state in ("open", "expiring", "expired", "revoked"):
            if state in states:
                return state
        return "-"

    @property
    def exposure_seconds(self) -> float | None:
        exposures = [
            c.exposure_seconds
            for c in self.credentials
            if c.purpose == CHILD and c.exposure_seconds is not None
        ]
        return max(exposures) if exposures else None


def _ci_run(started: InvocationStarted | None) -> str:
    ci = started.ci if started else {}
    run = ci.get("run_id")
    if run is None:
        return str(ci.get("provider", "-"))
    attempt = f"/{ci['run_attempt']}" if ci.get("run_attempt") else ""
    return f"{ci.get('repository', '?')}#{run}{attempt}"


def _row(
    found: history.InvocationHistory, now: datetime, environ: Mapping[str, str]
) -> InvocationRow:
    credentials = []
    for issued_at, issued in found.issued:
        close = found.closing(issued.fingerprint)
        exposure = close.exposure_seconds if close is not None else None
        if close is None:
            ended = "open"
        elif close.method != "expire":
            ended = "revoked"
        else:
            ended = "expired" if issued.expires_at <= now else "expiring"
        declared = brokers.declaration(issued.broker, environ)
        credentials.append(
            CredentialRow(
                cloud=issued.broker,
                purpose=issued.purpose,
                principal=issued.principal,
                issued=rfc3339(issued_at),
                expires_at=rfc3339(issued.expires_at),
                ended=ended,
                exposure_seconds=exposure,
                shown_principal=(
                    declared.principal_label(issued.principal) if declared else issued.principal
                ),
            )
        )
    finished = found.finished
    return InvocationRow(
        invocation_id=found.invocation_id,
        step_id=found.step_id,
        ci_run=_ci_run(found.started),
        started=rfc3339(found.started_at),
        exit_code=finished.exit_code if finished else None,
        finished=finished is not None,
        credentials=tuple(credentials),
        task=_task(found.started),
        ended_by=next(
            (e.record.ended_by for e in found.entries if isinstance(e.record, CommandExited)),
            None,
        ),
    )


def _task(started: InvocationStarted | None) -> TaskContext | None:
    return TaskContext.from_dict(started.task) if started is not None else None


def summarize(
    path: str,
    now: datetime,
    environ: Mapping[str, str],
    *,
    step: str | None = None,
    since: datetime | None = None,
    invocation: str | None = None,
    task: str | None = None,
    agent: str | None = None,
) -> list[InvocationRow]:
    """The ledger's invocations, oldest first, filtered."""
    rows = []
    for found in history.invocations(store.read(path)):
        if invocation is not None and found.invocation_id != invocation:
            continue
        if step is not None and found.step_id != step:
            continue
        if since is not None and found.started_at < since:
            continue
        context = _task(found.started)
        if task is not None and (context is None or context.task_id != task):
            continue
        if agent is not None and (context is None or context.agent != agent):
            continue
        rows.append(_row(found, now, environ))
    return rows


def as_dict(row: InvocationRow) -> dict[str, Any]:
    return {
        "invocation_id": row.invocation_id,
        "step_id": row.step_id,
        "task": row.task.as_dict() if row.task is not None else None,
        "ci_run": row.ci_run,
        "started": row.started,
        "exit_code": row.exit_code,
        "ended_by": row.ended_by,
        "finished": row.finished,
        "ended": row.ended,
        "exposure_seconds": row.exposure_seconds,
        "credentials": [c.as_dict() for c in row.credentials],
    }

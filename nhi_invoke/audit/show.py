"""`nhi-invoke audit show`: one row per invocation, from the ledger alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nhi_invoke.errors import ConfigError

CLOSING = {"credential.revoked": "revoked", "credential.expiring": "expiring"}


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


@dataclass(frozen=True)
class InvocationRow:
    invocation_id: str
    step_id: str
    ci_run: str
    started: str
    exit_code: int | None
    finished: bool
    credentials: tuple[CredentialRow, ...] = field(default=())

    @property
    def ended(self) -> str:
        """How the invocation's command credentials ended, worst first."""
        states = {c.ended for c in self.credentials if c.purpose == "child"}
        for state in ("open", "expiring", "expired", "revoked"):
            if state in states:
                return state
        return "-"

    @property
    def exposure_seconds(self) -> float | None:
        exposures = [
            c.exposure_seconds
            for c in self.credentials
            if c.purpose == "child" and c.exposure_seconds is not None
        ]
        return max(exposures) if exposures else None


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _read(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except OSError as exc:
        raise ConfigError(
            f"cannot read the ledger {path}: {exc.strerror}",
            "pass the ledger's path (default: the one `run` writes)",
        ) from exc
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not a JSON Lines ledger", f"run 'nhi-invoke audit verify {path}'"
        ) from exc


def _ci_run(started: dict[str, Any]) -> str:
    ci = started.get("ci") or {}
    run = ci.get("run_id")
    if run is None:
        return str(ci.get("provider", "-"))
    attempt = f"/{ci['run_attempt']}" if ci.get("run_attempt") else ""
    return f"{ci.get('repository', '?')}#{run}{attempt}"


def summarize(
    path: str,
    now: datetime,
    *,
    step: str | None = None,
    since: datetime | None = None,
    invocation: str | None = None,
) -> list[InvocationRow]:
    """The ledger's invocations, oldest first, filtered."""
    by_invocation: dict[str, list[dict[str, Any]]] = {}
    for event in _read(path):
        by_invocation.setdefault(str(event.get("invocation_id")), []).append(event)
    rows = []
    for invocation_id, events in by_invocation.items():
        started = next((e for e in events if e.get("event") == "invocation.started"), events[0])
        if invocation is not None and invocation_id != invocation:
            continue
        if step is not None and started.get("step_id") != step:
            continue
        if since is not None and _time(started["time"]) < since:
            continue
        closing = {e.get("fingerprint"): e for e in events if e.get("event") in CLOSING}
        credentials = []
        for issued in (e for e in events if e.get("event") == "credential.issued"):
            close = closing.get(issued.get("fingerprint"))
            if close is None:
                ended, exposure = "open", None
            elif close["event"] == "credential.revoked":
                ended, exposure = "revoked", close.get("exposure_seconds")
            else:
                ended = "expired" if _time(issued["expires_at"]) <= now else "expiring"
                exposure = close.get("exposure_seconds")
            credentials.append(
                CredentialRow(
                    cloud=issued.get("cloud", "?"),
                    purpose=issued.get("purpose", "?"),
                    principal=issued.get("principal", "?"),
                    issued=issued["time"],
                    expires_at=issued["expires_at"],
                    ended=ended,
                    exposure_seconds=exposure,
                )
            )
        finished = next((e for e in events if e.get("event") == "invocation.finished"), None)
        rows.append(
            InvocationRow(
                invocation_id=invocation_id,
                step_id=str(started.get("step_id", "")),
                ci_run=_ci_run(started),
                started=started.get("time", ""),
                exit_code=finished.get("exit_code") if finished else None,
                finished=finished is not None,
                credentials=tuple(credentials),
            )
        )
    return rows


def as_dict(row: InvocationRow) -> dict[str, Any]:
    return {
        "invocation_id": row.invocation_id,
        "step_id": row.step_id,
        "ci_run": row.ci_run,
        "started": row.started,
        "exit_code": row.exit_code,
        "finished": row.finished,
        "ended": row.ended,
        "exposure_seconds": row.exposure_seconds,
        "credentials": [vars(c) for c in row.credentials],
    }

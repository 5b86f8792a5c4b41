"""Reads the ledgers as they are on disk into `Invocation`s, checking each one's chain first.

The only module of `audit trace` that knows the ledger's lines: when the ledger package gains
typed records, this is the one place to switch to its reader.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from nhi_invoke.audit.trace.model import CiRun, Credential, Invocation, Problem, moment_of
from nhi_invoke.errors import ConfigError
from nhi_invoke.ledger.key import LedgerKey
from nhi_invoke.ledger.verify import verify
from nhi_invoke.tasks.context import TaskContext

CLOSING = ("credential.revoked", "credential.expiring")


def discover(paths: Iterable[str]) -> list[str]:
    """The ledger files: each file given, and every `*.jsonl` under each directory given."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, _dirs, files in sorted(os.walk(path)):
                found += [os.path.join(root, f) for f in sorted(files) if f.endswith(".jsonl")]
        elif os.path.exists(path):
            found.append(path)
        else:
            raise ConfigError(
                f"the ledger {path} does not exist",
                "pass ledger files or directories holding them (job artifacts)",
            )
    return list(dict.fromkeys(found))


def load(
    paths: Iterable[str], key: LedgerKey | None
) -> tuple[tuple[Invocation, ...], tuple[Problem, ...]]:
    """Every invocation in the ledgers, oldest first, and what was wrong with them."""
    problems: list[Problem] = []
    events: dict[str, list[dict[str, Any]]] = {}
    origin: dict[str, str] = {}
    seen: set[str] = set()
    for path in discover(paths):
        found: list[Problem] = []
        count = 0
        for line in _lines(path, found):
            if line in seen:  # the same ledger twice (two copies of one artifact)
                count += 1
                continue
            seen.add(line)
            record = json.loads(line)
            invocation_id = record.get("invocation_id")
            if not isinstance(invocation_id, str) or not isinstance(record.get("event"), str):
                continue
            events.setdefault(invocation_id, []).append(record)
            origin.setdefault(invocation_id, path)
            count += 1
        if count == 0:
            problems.append(
                Problem(path, "holds no nhi-invoke ledger events", "pass the ledger `run` wrote")
            )
            continue
        result = verify(path, key)
        if not result.ok:
            problems.append(
                Problem(
                    path,
                    f"fails verification: line {result.broken_line} {result.reason}; "
                    "its invocations are still traced",
                    f"run 'nhi-invoke audit verify {path}' and find out who changed it",
                )
            )
        problems += found
    invocations = []
    for invocation_id, records in events.items():
        invocation = _invocation(invocation_id, origin[invocation_id], records)
        if invocation is None:
            problems.append(
                Problem(
                    origin[invocation_id],
                    f"invocation {invocation_id} has no 'invocation.started' event",
                    "the ledger was cut: pass every ledger of the job",
                )
            )
        else:
            invocations.append(invocation)
    invocations.sort(key=lambda i: i.started_at)
    return tuple(invocations), tuple(problems)


def _lines(path: str, problems: list[Problem]) -> Iterable[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.strip()
                if not line:
                    continue
                try:
                    parsed = json.loads(line)
                except ValueError:
                    problems.append(Problem(path, f"line {number} is not JSON; skipped"))
                    continue
                if isinstance(parsed, dict):
                    yield line
    except OSError as exc:
        raise ConfigError(
            f"cannot read the ledger {path}: {exc.strerror}", "check the path and its permissions"
        ) from exc


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _invocation(invocation_id: str, path: str, records: list[dict[str, Any]]) -> Invocation | None:
    by_event: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_event.setdefault(record["event"], []).append(record)
    started = next(iter(by_event.get("invocation.started", [])), None)
    started_at = moment_of(started.get("time")) if started else None
    if started is None or started_at is None:
        return None
    closed = {
        r.get("fingerprint"): moment_of(r.get("time"))
        for name in CLOSING
        for r in by_event.get(name, [])
    }
    # A renewed credential (credential.updated) lives until its last update's expiry.
    updated = {r.get("fingerprint"): r for r in by_event.get("credential.updated", [])}
    credentials = tuple(
        credential
        for record in by_event.get("credential.issued", [])
        if (credential := _credential(_renewed(record, updated), closed)) is not None
    )
    exited = next(iter(by_event.get("command.exited", [])), None)
    finished = next(iter(by_event.get("invocation.finished", [])), None)
    # A failure before the command started leaves no command.exited: the `error` event is
    # when the credentials lost their only legitimate user.
    failed = next(iter(by_event.get("error", [])), None)
    command_end = exited or failed
    exit_code = (finished or exited or {}).get("exit_code")
    return Invocation(
        invocation_id=invocation_id,
        step_id=str(started.get("step_id", "")),
        ledger=path,
        started_at=started_at,
        command_ended_at=moment_of(command_end.get("time")) if command_end else None,
        finished_at=moment_of(finished.get("time")) if finished else None,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        ci=_ci(started.get("ci")),
        credentials=credentials,
        task=TaskContext.from_dict(started.get("task")),
    )


def _ci(value: object) -> CiRun:
    ci: Mapping[str, Any] = value if isinstance(value, dict) else {}
    return CiRun(
        provider=_text(ci.get("provider")),
        repository=_text(ci.get("repository")),
        run_id=_text(ci.get("run_id")),
        run_attempt=_text(ci.get("run_attempt")),
        sha=_text(ci.get("sha")),
        actor=_text(ci.get("actor")),
        ref=_text(ci.get("ref")),
        workflow=_text(ci.get("workflow")),
    )


def _renewed(record: dict[str, Any], updated: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    last = updated.get(record.get("fingerprint"))
    return record if last is None else record | {"expires_at": last.get("expires_at")}


def _credential(record: dict[str, Any], closed: Mapping[Any, datetime | None]) -> Credential | None:
    issued_at, expires_at = moment_of(record.get("time")), moment_of(record.get("expires_at"))
    principal, cloud = _text(record.get("principal")), _text(record.get("cloud"))
    if issued_at is None or expires_at is None or principal is None or cloud is None:
        return None
    fingerprint = str(record.get("fingerprint", ""))
    return Credential(
        cloud=cloud,
        purpose=_text(record.get("purpose")) or "child",
        principal=principal,
        issued_at=issued_at,
        expires_at=expires_at,
        fingerprint=fingerprint,
        access_key_id=_text(record.get("access_key_id")),
        session_name=_text(record.get("session_name")),
        role_arn=_text(record.get("role_arn")),
        source_identity=_text(record.get("source_identity")),
        kind=_text(record.get("kind")),
        federated_principal=_text(record.get("federated_principal")),
        request_reason=_text(record.get("request_reason")),
        accessor=_text(record.get("accessor")),
        token_id=_text(record.get("token_id")),
        client_request_id=_text(record.get("client_request_id")),
        principal_id=_text(record.get("principal_id")),
        closed_at=closed.get(fingerprint),
    )

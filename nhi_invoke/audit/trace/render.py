"""`audit trace` for a person (rich tables) or a program (`--json`)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from nhi_invoke.audit.trace.findings import Findings
from nhi_invoke.audit.trace.investigate import owners
from nhi_invoke.audit.trace.model import (
    AwsIdentity,
    Credential,
    Invocation,
    TracedEvent,
    TraceReport,
)
from nhi_invoke.figures import plural

NO_WRAP = frozenset({"time (UTC)", "source", "service", "action", "error", "", "key"})
SOURCE_NAMES = {
    "cloudtrail": "CloudTrail",
    "gcp": "GCP audit",
    "vault": "Vault audit",
    "azure": "Entra sign-in",
}


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, at the precision the source gave."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _credential(credential: Credential) -> dict[str, Any]:
    return {
        "cloud": credential.cloud,
        "purpose": credential.purpose,
        "principal": credential.principal,
        "session_name": credential.session_name,
        "access_key_id": credential.access_key_id,
        "accessor": credential.accessor,
        "token_id": credential.token_id,
        "fingerprint": credential.fingerprint,
        "issued": timestamp(credential.issued_at),
        "expires_at": timestamp(credential.expires_at),
    }


def event_dict(traced: TracedEvent) -> dict[str, Any]:
    event = traced.event
    identity = event.identity
    return {
        "event_id": event.event_id,
        "source": event.source,
        "event_time": timestamp(event.event_time),
        "event_name": event.event_name,
        "service": event.service,
        "resource": event.resource,
        "error_code": event.error_code,
        "principal": event.principal,
        "access_key_id": identity.access_key_id if isinstance(identity, AwsIdentity) else None,
        "invocation_id": traced.invocation_id,
        "ambiguous": list(traced.ambiguous),
        "after_end": traced.after_end,
        "unattributed": traced.unattributed,
        "match": traced.match,
        "note": traced.note,
    }


def invocation_dict(invocation: Invocation, event_ids: list[str]) -> dict[str, Any]:
    ci = invocation.ci
    return {
        "invocation_id": invocation.invocation_id,
        "step_id": invocation.step_id,
        "task": invocation.task.as_dict() if invocation.task is not None else None,
        "run_id": ci.run_id,
        "run_attempt": ci.run_attempt,
        "repository": ci.repository,
        "commit": ci.sha,
        "actor": ci.actor,
        "ref": ci.ref,
        "workflow": ci.workflow,
        "ci": ci.provider,
        "ledger": invocation.ledger,
        "started": timestamp(invocation.started_at),
        "command_ended": _maybe(invocation.command_ended_at),
        "finished": _maybe(invocation.finished_at),
        "exit_code": invocation.exit_code,
        "credentials": [_credential(c) for c in invocation.credentials],
        "event_ids": event_ids,
    }


def _maybe(moment: datetime | None) -> str | None:
    return timestamp(moment) if moment is not None else None


def as_dict(report: TraceReport) -> dict[str, Any]:
    owned = owners(report.events)
    return {
        "events": [event_dict(t) for t in report.events],
        "invocations": [
            invocation_dict(i, owned.get(i.invocation_id, [])) for i in report.invocations
        ],
        "warnings": [p.one_line() for p in report.problems],
        "read": [{"source": s.source, "files": s.files, "events": s.events} for s in report.stats],
    }


def _console() -> Any:
    from rich.console import Console  # noqa: PLC0415

    # Off a terminal (CI logs), wide enough that ARNs and flags stay on one line.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240, soft_wrap=False)


def _plain(text: str | None) -> str:
    """Log and ledger values, shown as they are (never read as rich markup)."""
    from rich.markup import escape  # noqa: PLC0415

    return escape(text or "")


def _table(title: str, columns: tuple[str, ...]) -> Any:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        # Times, names and flags never fold; resources and principals may.
        table.add_column(column, overflow="fold", no_wrap=column in NO_WRAP)
    return table


def _time(traced: TracedEvent) -> str:
    return timestamp(traced.event.event_time).replace("T", " ")


def _flag(traced: TracedEvent) -> str:
    flags = []
    if traced.after_end:
        flags.append("[bold red]USED AFTER END[/]")
    if traced.match and traced.match not in ("access-key", "accessor"):
        flags.append(f"by {traced.match}")
    if traced.note:
        flags.append(_plain(traced.note))
    return "; ".join(flags)


def _header(invocation: Invocation) -> str:
    ci = invocation.ci
    run = f"{ci.repository or '?'}#{ci.run_id}" if ci.run_id else (ci.provider or "local")
    if ci.run_attempt:
        run += f"/{ci.run_attempt}"
    parts = [f"[bold]{_plain(invocation.step_id)}[/]", _plain(run)]
    task = invocation.task
    if task is not None and task.agent:
        parts.append(f"agent {_plain(task.agent)}")
    if task is not None and task.on_behalf_of:
        parts.append(f"for {_plain(task.on_behalf_of)}")
    if ci.sha:
        parts.append(f"commit {_plain(ci.sha[:12])}")
    if ci.actor:
        parts.append(f"by {_plain(ci.actor)}")
    exit_text = (
        "running or crashed" if invocation.exit_code is None else (f"exit {invocation.exit_code}")
    )
    parts.append(f"invocation {invocation.invocation_id} ({exit_text})")
    return " · ".join(parts)


def table(report: TraceReport, findings: Findings) -> None:
    console = _console()
    for problem in report.problems:
        console.print(
            f"[yellow]warning:[/] {_plain(problem.one_line())}", highlight=False, soft_wrap=True
        )
    read = ", ".join(
        f"{plural(s.files, SOURCE_NAMES.get(s.source, s.source) + ' file')} "
        f"({plural(s.events, 'event') if s.events < 1000 else f'{s.events:,} events'})"
        for s in report.stats
    )
    console.print(
        f"Read {read or 'no log'}; {plural(len(report.ledgers), 'ledger')}, "
        f"{plural(len(report.invocations), 'invocation')}."
    )
    if findings.after_end:
        console.print(
            f"[bold red]{plural(findings.after_end, 'call')} used a credential after its "
            "invocation ended[/]: the command was gone, someone else held the credential."
        )
    if findings.unattributed:
        console.print(
            f"[bold yellow]{plural(findings.unattributed, 'call')} by sessions of a managed "
            "identity that no ledger knows[/]: the identity is still used outside nhi-invoke."
        )
    quiet = []
    by_invocation: dict[str, list[TracedEvent]] = {}
    for traced in report.events:
        if traced.invocation_id:
            by_invocation.setdefault(traced.invocation_id, []).append(traced)
    for invocation in report.invocations:
        own = by_invocation.get(invocation.invocation_id, [])
        if not own:
            quiet.append(invocation.invocation_id)
            continue
        events = _table(
            _header(invocation),
            (
                "time (UTC)",
                "source",
                "service",
                "action",
                "resource",
                "error",
                "",
            ),
        )
        for traced in own:
            event = traced.event
            events.add_row(
                _time(traced),
                event.source,
                _plain(event.service),
                _plain(event.event_name),
                _plain(event.resource),
                _plain(event.error_code),
                _flag(traced),
            )
        console.print(events)
        for credential in invocation.credentials:
            held = (
                credential.access_key_id
                or credential.accessor
                or credential.token_id
                or credential.fingerprint[:19]
            )
            console.print(
                f"  held {credential.cloud} {credential.purpose}: {_plain(credential.principal)} "
                f"({_plain(held)}) until {timestamp(credential.expires_at)}",
                highlight=False,
            )
    _others(console, report)
    if quiet:
        console.print(f"No logged call by {plural(len(quiet), 'invocation')}: {', '.join(quiet)}")


def _others(console: Any, report: TraceReport) -> None:
    ambiguous = [t for t in report.events if t.ambiguous]
    if ambiguous:
        rows = _table(
            "Calls more than one invocation could have made (their windows overlap)",
            ("time (UTC)", "principal", "action", "resource", "invocations"),
        )
        for traced in ambiguous:
            rows.add_row(
                _time(traced),
                _plain(traced.event.principal),
                _plain(traced.event.event_name),
                _plain(traced.event.resource),
                ", ".join(traced.ambiguous)
                + (" [bold red]USED AFTER END[/]" if traced.after_end else ""),
            )
        console.print(rows)
    unattributed = [t for t in report.events if t.unattributed]
    if unattributed:
        rows = _table(
            "Calls by managed identities that no ledger knows",
            ("time (UTC)", "source", "principal", "key", "action", "resource", "note"),
        )
        for traced in unattributed:
            identity = traced.event.identity
            rows.add_row(
                _time(traced),
                traced.event.source,
                _plain(traced.event.principal),
                _plain(identity.access_key_id if isinstance(identity, AwsIdentity) else None),
                _plain(traced.event.event_name),
                _plain(traced.event.resource),
                _plain(traced.note),
            )
        console.print(rows)

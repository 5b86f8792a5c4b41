"""`audit trace` from end to end: ledgers, logs, attribution, focus."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from nhi_invoke.audit.trace import attribution, files, ledgers, sources
from nhi_invoke.audit.trace.duck import Engine
from nhi_invoke.audit.trace.model import (
    AwsIdentity,
    AzureIdentity,
    Focus,
    GcpIdentity,
    Invocation,
    LogEvent,
    Problem,
    SourceStats,
    TracedEvent,
    TraceInput,
    TraceReport,
    VaultIdentity,
)
from nhi_invoke.errors import ConfigError, UsageError
from nhi_invoke.figures import plural
from nhi_invoke.ledger.key import LedgerKey

# How many times to follow AssumeRole hops the command made itself (each is one more scan).
MAX_DERIVED_PASSES = 4


def investigate(request: TraceInput, key: LedgerKey | None) -> TraceReport:
    invocations, problems = ledgers.load(request.ledgers, key)
    problem_list = list(problems)
    if not invocations:
        raise ConfigError(
            "the ledgers hold no invocation", "pass the ledgers `nhi-invoke run` wrote"
        )
    vault_hashes: dict[str, str] = {}
    accessors = [c.accessor for i in invocations for c in i.credentials if c.accessor]
    vault_logs = any(name == "vault" for name, _ in request.logs)
    if request.vault_hashing is not None and accessors and vault_logs:
        from nhi_invoke.audit.trace import vault_hash  # noqa: PLC0415

        vault_hashes = vault_hash.hashes(accessors, request.vault_hashing)
    need = sources.needles(invocations, vault_hashes.values())
    events, stats = _read_logs(request, need, invocations, vault_hashes, problem_list)
    events = [e for e in events if request.window.holds(e.event_time)]
    if not vault_hashes and any(
        isinstance(e.identity, VaultIdentity) and attribution.is_hmac(e.identity.accessor)
        for e in events
    ):
        problem_list.append(
            Problem(
                "--vault-audit",
                "the audit log HMACs token accessors, so its requests cannot be matched",
                "pass --vault-audit-hash-token (with --vault-addr) to hash the ledgers' "
                "accessors through the device's sys/audit-hash",
            )
        )
    traced = attribution.attribute(events, invocations, vault_hashes)
    traced, chosen = _focus(traced, invocations, request.focus, problem_list)
    if not _has_focus(request.focus):
        chosen = [i for i in invocations if _overlaps(i, request)]
    return TraceReport(
        events=tuple(traced),
        invocations=tuple(chosen),
        problems=tuple(problem_list),
        stats=tuple(stats),
        ledgers=tuple(ledgers.discover(request.ledgers)),
    )


def _read_logs(
    request: TraceInput,
    need: sources.Needles,
    invocations: Sequence[Invocation],
    vault_hashes: dict[str, str],
    problems: list[Problem],
) -> tuple[list[LogEvent], list[SourceStats]]:
    by_source: dict[str, list[str]] = {}
    for name, path in request.logs:
        by_source.setdefault(name, []).append(path)
    engine = Engine()
    events: dict[tuple[str, str], LogEvent] = {}
    stats = []
    given = usable = 0
    try:
        for name, paths in by_source.items():
            reader = sources.reader(name)
            logs, unreadable = files.open_logs(files.discover(paths, reader.suffixes))
            problems += unreadable
            given += len(logs) + len(unreadable)
            read = reader.read(engine, logs, need)
            problems += read.problems
            usable += read.stats.files
            stats.append(read.stats)
            for event in read.events:
                events.setdefault((event.source, event.event_id), event)
            if name == "cloudtrail":
                _follow_assumed_roles(engine, reader, logs, need, invocations, events)
    finally:
        engine.close()
    if given and not usable:
        raise ConfigError(
            f"none of the {plural(given, 'log file')} given could be used",
            "see the warnings above: pass CloudTrail, GCP audit, Vault audit or Entra sign-in logs",
        )
    return list(events.values()), stats


def _follow_assumed_roles(
    engine: Engine,
    reader: sources.LogReader,
    logs: Sequence[files.LogFile],
    need: sources.Needles,
    invocations: Sequence[Invocation],
    events: dict[tuple[str, str], LogEvent],
) -> None:
    """Sessions the command made with AssumeRole into roles nhi-invoke does not manage are
    only known once the first scan found the AssumeRole: scan again for their keys."""
    found = attribution.index(invocations, {})
    scanned: set[str] = set(need.aws_keys)
    for _ in range(MAX_DERIVED_PASSES):
        derived = attribution.derived_keys(list(events.values()), found)
        fresh = sorted(set(derived) - scanned)
        if not fresh:
            return
        scanned.update(fresh)
        again = reader.read(engine, logs, sources.Needles(aws_keys=tuple(fresh), derived_only=True))
        for event in again.events:
            events.setdefault((event.source, event.event_id), event)


def _has_focus(focus: Focus) -> bool:
    return any(
        (focus.invocation_id, focus.access_key_id, focus.event_id, focus.principal, focus.task_id)
    )


def _of_task(invocations: Iterable[Invocation], task_id: str) -> list[Invocation]:
    """Every invocation an agent's task opened (one per tool call, or one for the task)."""
    return [i for i in invocations if i.task is not None and i.task.task_id == task_id]


def _overlaps(invocation: Invocation, request: TraceInput) -> bool:
    window = request.window
    last = max([c.expires_at for c in invocation.credentials] or [invocation.started_at])
    return (window.until is None or invocation.started_at <= window.until) and (
        window.since is None or last >= window.since
    )


def _owners(traced: TracedEvent) -> tuple[str, ...]:
    return (traced.invocation_id,) if traced.invocation_id else traced.ambiguous


def _names(event: LogEvent, principal: str) -> bool:
    identity = event.identity
    if event.principal == principal:
        return True
    if isinstance(identity, AwsIdentity):
        return principal in (identity.issuer_arn, identity.requested_role_arn)
    if isinstance(identity, GcpIdentity):
        return principal in (identity.principal_email, identity.principal_subject) or (
            principal in identity.delegation_subjects
        )
    if isinstance(identity, AzureIdentity):
        wanted = principal.lower()
        return wanted in (
            sources.lower(identity.app_id),
            sources.lower(identity.service_principal_id),
        )
    assert isinstance(identity, VaultIdentity)
    named = sources.vault_role_name(principal)  # vault:<mount>/role/<role>, as ledgers say
    return principal == identity.display_name or (named is not None and named[1] == identity.role)


def _focus(
    traced: list[TracedEvent],
    invocations: Sequence[Invocation],
    focus: Focus,
    problems: list[Problem],
) -> tuple[list[TracedEvent], list[Invocation]]:
    by_id = {i.invocation_id: i for i in invocations}
    if focus.invocation_id is not None:
        if focus.invocation_id not in by_id:
            raise ConfigError(
                f"no invocation {focus.invocation_id} in the ledgers",
                "run 'nhi-invoke audit show' to list them, or pass the ledger that has it",
            )
        chosen = {focus.invocation_id}
        seeds: list[TracedEvent] = []
    elif focus.access_key_id is not None:
        seeds = [
            t
            for t in traced
            if isinstance(t.event.identity, AwsIdentity)
            and focus.access_key_id in (t.event.identity.access_key_id, t.event.identity.minted_key)
        ]
        chosen = {
            i.invocation_id
            for i in invocations
            for c in i.credentials
            if c.access_key_id == focus.access_key_id
        } | {o for t in seeds for o in _owners(t)}
    elif focus.event_id is not None:
        seeds = [t for t in traced if t.event.event_id == focus.event_id]
        chosen = {o for t in seeds for o in _owners(t)}
    elif focus.task_id is not None:
        seeds = []
        chosen = {i.invocation_id for i in _of_task(invocations, focus.task_id)}
        if not chosen:
            raise UsageError(
                f"no invocation for task {focus.task_id} in the ledgers",
                "run 'nhi-invoke audit show' to list tasks, or pass the ledger that has it",
            )
    elif focus.principal is not None:
        seeds = [t for t in traced if _names(t.event, focus.principal)]
        chosen = {
            i.invocation_id
            for i in invocations
            for c in i.credentials
            if focus.principal in (c.principal, c.role_arn, c.federated_principal)
        }
    else:
        return traced, list(invocations)
    if not seeds and not chosen:
        problems.append(Problem("(focus)", f"nothing in the logs read matches {_describe(focus)}"))
    seed_ids = {id(t) for t in seeds}
    kept = [t for t in traced if id(t) in seed_ids or set(_owners(t)) & chosen]
    return kept, [by_id[i] for i in sorted(chosen, key=lambda i: by_id[i].started_at)]


def _describe(focus: Focus) -> str:
    for flag, value in (
        ("--access-key-id", focus.access_key_id),
        ("--event-id", focus.event_id),
        ("--principal", focus.principal),
    ):
        if value is not None:
            return f"{flag} {value}"
    return "the focus"


def owners(events: Iterable[TracedEvent]) -> dict[str, list[str]]:
    """invocation id -> the ids of the events it made or may have made, in time order."""
    owned: dict[str, list[str]] = {}
    for traced in events:
        for owner in _owners(traced):
            owned.setdefault(owner, []).append(traced.event.event_id)
    return owned


def for_sql(request: TraceInput, key: LedgerKey | None) -> tuple[list[Invocation], list[Problem]]:
    """The invocations `--print-sql` builds its query from: the focus, else the window's."""
    invocations, problems = ledgers.load(request.ledgers, key)
    focus = request.focus
    if focus.event_id is not None:
        raise UsageError(
            "--event-id needs the logs, not SQL", "pass the logs with --cloudtrail/--gcp-audit"
        )
    chosen = [i for i in invocations if _overlaps(i, request)]
    if focus.invocation_id is not None:
        chosen = [i for i in invocations if i.invocation_id == focus.invocation_id]
    elif focus.task_id is not None:
        chosen = _of_task(invocations, focus.task_id)
    elif focus.access_key_id is not None:
        wanted = focus.access_key_id
        chosen = [i for i in invocations if any(c.access_key_id == wanted for c in i.credentials)]
    elif focus.principal is not None:
        chosen = [
            i
            for i in invocations
            if any(
                focus.principal in (c.principal, c.role_arn, c.federated_principal)
                for c in i.credentials
            )
        ]
    if not chosen:
        raise ConfigError(
            "no invocation in the ledgers matches", "check the ledgers and --since/--until/focus"
        )
    return chosen, list(problems)

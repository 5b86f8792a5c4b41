"""`nhi-invoke audit trace`: from a cloud log event to the one invocation that made it, and back."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from nhi_invoke.cli.audit import audit_app
from nhi_invoke.cli.options import Debug
from nhi_invoke.errors import ConfigError, UsageError

_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str | None, flag: str) -> datetime | None:
    """An RFC 3339 time, a date (UTC), or a duration back from now (30m, 12h, 7d)."""
    if text is None:
        return None
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        return datetime.now(UTC) - timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"{flag} {text!r} is not a time",
            "use 2026-11-28, 2026-11-28T12:00:00Z, or 30m / 12h / 7d",
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_app.command("trace")
def trace(
    ledgers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Ledgers, or directories searched for *.jsonl (job artifacts); "
            "default: NHI_LEDGER, or the one `run` writes.",
            show_default=False,
            metavar="[LEDGER]...",
        ),
    ] = None,
    cloudtrail: Annotated[
        list[str] | None,
        typer.Option(
            "--cloudtrail",
            help="CloudTrail logs as delivered to S3 (.json, .json.gz, or a tree of them) or "
            "`aws cloudtrail lookup-events` output.",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    gcp_audit: Annotated[
        list[str] | None,
        typer.Option(
            "--gcp-audit",
            help="GCP audit entries: `gcloud logging read --format=json` output or a log "
            "sink's JSON lines (files or directories).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    vault_audit: Annotated[
        list[str] | None,
        typer.Option(
            "--vault-audit",
            help="Vault/OpenBao file audit device logs (files or directories).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    azure_signins: Annotated[
        list[str] | None,
        typer.Option(
            "--azure-signins",
            help="Entra ID sign-in logs: Microsoft Graph auditLogs/signIns pages or an Azure "
            "Monitor export of service principal / managed identity sign-ins (files or "
            "directories).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    invocation: Annotated[
        str | None, typer.Option(help="Everything this invocation did.", metavar="ID")
    ] = None,
    access_key_id: Annotated[
        str | None,
        typer.Option(
            help="The calls of this AWS access key id, and its invocation.", metavar="KEY_ID"
        ),
    ] = None,
    event_id: Annotated[
        str | None,
        typer.Option(
            help="This event (eventID, insertId, request id, sign-in id) and its invocation.",
            metavar="ID",
        ),
    ] = None,
    principal: Annotated[
        str | None,
        typer.Option(
            help="Calls by this role, session ARN, service account, Vault role or Azure client id.",
            metavar="PRINCIPAL",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="Everything an agent's task did (every invocation with its task id)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only events since (a time, a date, or 30m / 12h / 7d).", metavar="WHEN"),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only events until (a time or a date).", metavar="WHEN")
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            help="Exit 1 on: none; after-end (a credential used after its invocation ended); "
            "unattributed (also: calls by managed identities no ledger knows).",
            metavar="LEVEL",
        ),
    ] = "after-end",
    print_sql: Annotated[
        str | None,
        typer.Option(
            "--print-sql",
            help="Print the query for athena, bigquery or cloudtrail-lake instead of reading logs.",
            metavar="DIALECT",
        ),
    ] = None,
    sql_table: Annotated[
        list[str] | None,
        typer.Option(
            "--sql-table",
            help="The table(s) --print-sql queries (athena: cloudtrail_logs; bigquery: "
            "cloudaudit_googleapis_com_activity and _data_access; cloudtrail-lake: required, "
            "the event data store ID).",
            show_default=False,
            metavar="TABLE",
        ),
    ] = None,
    vault_audit_hash_token: Annotated[
        str | None,
        typer.Option(
            envvar="NHI_VAULT_AUDIT_HASH_TOKEN",
            help="A Vault token allowed to call sys/audit-hash, to match HMAC'd accessors "
            "(prefer the variable: a flag shows in the process list).",
            show_default=False,
            metavar="TOKEN",
        ),
    ] = None,
    vault_addr: Annotated[
        str | None,
        typer.Option(
            envvar=["VAULT_ADDR", "BAO_ADDR"],
            help="Vault's address, for sys/audit-hash.",
            metavar="URL",
        ),
    ] = None,
    vault_audit_device: Annotated[
        str, typer.Option(help="The path the audit device is enabled at.", metavar="PATH")
    ] = "file",
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the events, the invocations, the warnings and what was read as one "
            "JSON object instead of text.",
        ),
    ] = False,
    debug: Debug = False,
) -> int:
    """Tie CloudTrail, GCP, Vault audit events and Entra sign-ins to the invocations in the
    ledgers."""
    from nhi_invoke.audit.trace import findings, render  # noqa: PLC0415
    from nhi_invoke.audit.trace.model import Focus, TraceInput, VaultHashing, Window  # noqa: PLC0415
    from nhi_invoke.ledger import key as ledger_key  # noqa: PLC0415

    findings.check_fail_on(fail_on)
    focus = Focus(invocation, access_key_id, event_id, principal, task)
    if sum(value is not None for value in vars(focus).values()) > 1:
        raise UsageError(
            "--invocation, --access-key-id, --event-id, --principal and --task exclude each other",
            "pass one of them",
        )
    window = Window(parse_time(since, "--since"), parse_time(until, "--until"))
    logs = tuple(
        (source, path)
        for source, paths in (
            ("cloudtrail", cloudtrail),
            ("gcp", gcp_audit),
            ("vault", vault_audit),
            ("azure", azure_signins),
        )
        for path in paths or ()
    )
    hashing = None
    if vault_audit_hash_token:
        if not vault_addr:
            raise UsageError(
                "--vault-audit-hash-token needs Vault's address",
                "pass --vault-addr or set VAULT_ADDR",
            )
        hashing = VaultHashing(vault_addr, vault_audit_hash_token, vault_audit_device)
    request = TraceInput(
        ledgers=tuple(ledgers or [_default_ledger()]),
        logs=logs,
        window=window,
        focus=focus,
        vault_hashing=hashing,
    )
    key = ledger_key.load(os.environ)
    if print_sql is not None:
        from nhi_invoke.audit.trace.investigate import for_sql  # noqa: PLC0415
        from nhi_invoke.audit.trace.sql import print_sql as sql_for  # noqa: PLC0415

        chosen, problems = for_sql(request, key)
        _warn([p.one_line() for p in problems])
        print(sql_for(print_sql, chosen, window, tuple(sql_table or ())), end="")
        return 0
    if not logs:
        raise UsageError(
            "give the logs to trace",
            "pass --cloudtrail, --gcp-audit, --vault-audit or --azure-signins "
            "(or --print-sql for a query)",
        )
    from nhi_invoke.audit.trace.investigate import investigate  # noqa: PLC0415

    report = investigate(request, key)
    counted = findings.count(report.events)
    if json_output:
        _warn([p.one_line() for p in report.problems])
        from nhi_invoke.render import envelope  # noqa: PLC0415

        print(envelope("audit trace", render.as_dict(report)))
    else:
        render.table(report, counted)  # its first lines are the warnings
    return findings.exit_code(counted, fail_on)


def _default_ledger() -> str:
    from nhi_invoke.ledger import path_for  # noqa: PLC0415

    return path_for(None, os.environ)


def _warn(lines: list[str]) -> None:
    for line in lines:
        text = "".join(ch if ch.isprintable() else "?" for ch in line)
        print(f"nhi-invoke: warning: {text}", file=sys.stderr, flush=True)

"""`nhi-invoke audit show|verify|key init|pipelines|trust-policy`."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from nhi_invoke.audit.findings import Finding, Rule, checked_severity, gate, plural
from nhi_invoke.cli.commands import app
from nhi_invoke.cli.options import Debug, Json
from nhi_invoke.errors import UsageError

audit_app = typer.Typer(
    help="Audit the ledger, pipelines and trust policies (no cloud access).", no_args_is_help=True
)
key_app = typer.Typer(help="The ledger's HMAC key.", no_args_is_help=True)
audit_app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")

LedgerArgument = Annotated[
    str | None,
    typer.Argument(
        help="The ledger [default: NHI_LEDGER, or the one `run` writes].", show_default=False
    ),
]


def _ledger(path: str | None) -> str:
    from nhi_invoke.ledger import path_for  # noqa: PLC0415

    return path_for(path, os.environ)


def _since(text: str | None) -> datetime | None:
    """An RFC 3339 time, a date, or a duration back from now (30m, 12h, 7d)."""
    if text is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(
            f"--since {text!r} is not a time",
            "use 2026-11-28, 2026-11-28T12:00:00Z, or 30m / 12h / 7d",
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_app.command()
def show(
    ledger: LedgerArgument = None,
    step: Annotated[str | None, typer.Option(help="Only this step.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only invocations started since (a time, or 30m / 12h / 7d).")
    ] = None,
    invocation: Annotated[str | None, typer.Option(help="Only this invocation.")] = None,
    task: Annotated[
        str | None, typer.Option(help="Only invocations for this task (--task-id, task_id=).")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Only invocations by this agent.")] = None,
    json_output: Json = False,
    debug: Debug = False,
) -> int:
    """One row per invocation: step, CI run, principals, expiry, exit, how it ended, exposure."""
    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.audit.show import as_dict, summarize  # noqa: PLC0415

    rows = summarize(
        _ledger(ledger),
        datetime.now(UTC),
        os.environ,
        step=step,
        since=_since(since),
        invocation=invocation,
        task=task,
        agent=agent,
    )
    if json_output:
        print(json.dumps([as_dict(r) for r in rows], indent=2))
    else:
        render.invocations(rows)
    return 0


@audit_app.command()
def verify(
    ledger: LedgerArgument = None,
    head: Annotated[
        str | None,
        typer.Option(
            help="The head hash the job summary showed: also catches a cut or changed last line."
        ),
    ] = None,
    debug: Debug = False,
) -> int:
    """Check the hash chain (and the HMACs, with a key); exit 1 at the first broken line."""
    from nhi_invoke.ledger import key as ledger_key  # noqa: PLC0415
    from nhi_invoke.ledger.verify import verify as verify_ledger  # noqa: PLC0415

    path = _ledger(ledger)
    if not os.path.exists(path):
        raise UsageError(f"the ledger {path} does not exist", "pass the ledger's path")
    key = ledger_key.load(os.environ)
    result = verify_ledger(path, key, head)
    checked = (
        f"hash chain and HMACs (key {result.key_id})"
        if result.key_id
        else "hash chain only (no key: set NHI_LEDGER_KEY or run "
        "'nhi-invoke audit key init' to check HMACs too)"
    )
    if not result.ok:
        print(f"{path}: line {result.broken_line} {result.reason}", file=sys.stderr)
        print(f"checked: {checked}", file=sys.stderr)
        return 1
    print(f"{path}: {result.lines} lines intact, head {result.head}")
    print(f"checked: {checked}")
    return 0


@key_app.command("init")
def key_init(debug: Debug = False) -> int:
    """Create the ledger's HMAC key in the OS keyring (once per workstation)."""
    from nhi_invoke.ledger import key as ledger_key  # noqa: PLC0415

    key = ledger_key.init(os.environ)
    print(
        f"ledger key {key.key_id} is in the OS keyring (service 'nhi-invoke'); new ledger "
        "lines written on this machine carry an HMAC"
    )
    return 0


FailOn = Annotated[
    str,
    typer.Option(
        help="Exit 1 when a finding is at least this severe (info, low, medium, high, critical)."
    ),
]
Sarif = Annotated[
    str | None, typer.Option(help="Also write SARIF 2.1.0 to this file ('-' for stdout).")
]
JsonReport = Annotated[
    bool, typer.Option("--json", help="Print the report as one JSON object (docs/audit.md).")
]


def _envelope(command: str, body: dict[str, object]) -> str:
    """The one JSON shape of every command's --json: the command, the version, then its keys."""
    from nhi_invoke import __version__  # noqa: PLC0415

    return json.dumps({"command": command, "version": __version__, **body}, indent=2)


def _one_stdout(json_output: bool, sarif: str | None) -> None:
    if json_output and sarif == "-":
        raise UsageError("--json and --sarif - both print to stdout", "write the SARIF to a file")


def _write_sarif(target: str, findings: tuple[Finding, ...], rules: dict[str, Rule]) -> None:
    from nhi_invoke.audit import sarif  # noqa: PLC0415

    text = json.dumps(sarif.document(findings, rules), indent=2)
    if target == "-":
        print(text)
    else:
        sarif.write(target, text)


@audit_app.command()
def pipelines(
    path: Annotated[
        str, typer.Argument(help="A repository checkout (or a folder, or one pipeline file).")
    ] = ".",
    json_output: JsonReport = False,
    sarif: Sarif = None,
    fail_on: FailOn = "high",
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Leave out files and folders matching this glob, relative to PATH (repeatable).",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="List the files read, and those skipped and why."),
    ] = False,
    debug: Debug = False,
) -> int:
    """Find long-lived keys, job-wide credentials, shared identities and wide id-token grants."""
    from nhi_invoke.audit import table  # noqa: PLC0415
    from nhi_invoke.audit.pipelines import RULES, audit  # noqa: PLC0415

    checked_severity("--fail-on", fail_on)
    _one_stdout(json_output, sarif)
    report = audit(path, tuple(exclude or ()))
    if sarif is not None:
        _write_sarif(sarif, report.findings, RULES)
    if json_output:
        print(_envelope("audit pipelines", report.as_dict()))
    elif sarif != "-":
        table.findings(report.findings, plural(len(report.files), "pipeline file"))
        table.lines(report.summary())
        if verbose:
            table.lines(report.listing())
    return gate(report.findings, fail_on)


@audit_app.command("trust-policy")
def trust_policy(
    files: Annotated[
        list[str] | None, typer.Argument(help="Trust policy JSON files.", show_default=False)
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(help="Read the trust policy of this IAM role (ambient AWS credentials)."),
    ] = None,
    json_output: JsonReport = False,
    sarif: Sarif = None,
    fail_on: FailOn = "high",
    debug: Debug = False,
) -> int:
    """Lint AWS role trust policies for OIDC federation and chaining."""
    from nhi_invoke.audit import table  # noqa: PLC0415
    from nhi_invoke.audit import trust_policy as linter  # noqa: PLC0415

    checked_severity("--fail-on", fail_on)
    _one_stdout(json_output, sarif)
    if bool(files) == (role is not None):
        raise UsageError("give trust policy FILEs or --role NAME", "pass one of them, not both")
    report = linter.lint_files(tuple(files)) if files else linter.lint_role(role or "", os.environ)
    if sarif is not None:
        _write_sarif(sarif, report.findings, linter.RULES)
    if json_output:
        print(_envelope("audit trust-policy", report.as_dict()))
    elif sarif != "-":
        several = plural(len(report.policies), "trust policy", "trust policies")
        scope = report.policies[0] if len(report.policies) == 1 else several
        table.findings(report.findings, scope)
    return gate(report.findings, fail_on)


from nhi_invoke.cli import audit_trace  # noqa: E402, F401 - registers `audit trace`

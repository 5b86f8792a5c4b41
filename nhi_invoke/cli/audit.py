"""`nhi-invoke audit show|verify|key init|pipelines|trust-policy`."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from nhi_invoke.audit.findings import SEVERITIES, Finding
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
    from nhi_invoke.config import default_ledger_path  # noqa: PLC0415

    return path or os.environ.get("NHI_LEDGER") or default_ledger_path(os.environ)


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
    json_output: Json = False,
    debug: Debug = False,
) -> int:
    """One row per invocation: step, CI run, principals, expiry, exit, how it ended, exposure."""
    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.audit.show import as_dict, summarize  # noqa: PLC0415

    rows = summarize(
        _ledger(ledger), datetime.now(UTC), step=step, since=_since(since), invocation=invocation
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
    from nhi_invoke import ledger_key  # noqa: PLC0415
    from nhi_invoke.ledger import verify as verify_ledger  # noqa: PLC0415

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
    from nhi_invoke import ledger_key  # noqa: PLC0415

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


def _gate(findings: tuple[Finding, ...] | list[Finding], fail_on: str) -> int:
    if fail_on not in SEVERITIES:
        raise UsageError(
            f"--fail-on {fail_on!r} is not a severity", f"use one of {', '.join(SEVERITIES)}"
        )
    return 1 if any(f.at_least(fail_on) for f in findings) else 0


@audit_app.command()
def pipelines(
    path: Annotated[str, typer.Argument(help="A repository checkout or one pipeline file.")] = ".",
    json_output: Json = False,
    sarif: Annotated[
        str | None, typer.Option(help="Also write SARIF 2.1.0 to this file ('-' for stdout).")
    ] = None,
    fail_on: FailOn = "high",
    debug: Debug = False,
) -> int:
    """Find long-lived keys, job-wide credentials, shared identities and wide id-token grants."""
    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.audit import sarif as sarif_output  # noqa: PLC0415
    from nhi_invoke.audit.pipelines import RULES, audit  # noqa: PLC0415

    report = audit(path)
    if sarif is not None:
        text = json.dumps(sarif_output.document(report.findings, RULES), indent=2)
        if sarif == "-":
            print(text)
        else:
            with open(sarif, "w", encoding="utf-8") as handle:
                handle.write(text)
    if json_output:
        print(
            json.dumps(
                {
                    "files": list(report.files),
                    "findings": [f.as_dict() for f in report.findings],
                    "cloud_steps": report.cloud_steps,
                    "per_invocation_steps": report.per_invocation_steps,
                },
                indent=2,
            )
        )
    elif sarif != "-":
        render.findings(list(report.findings), f"{len(report.files)} pipeline file(s)")
        print(
            f"{report.per_invocation_steps} of {report.cloud_steps} steps that use a cloud "
            "identity run under nhi-invoke (one identity per invocation)"
        )
    return _gate(report.findings, fail_on)


@audit_app.command("trust-policy")
def trust_policy(
    file: Annotated[str | None, typer.Argument(help="A trust policy JSON file.")] = None,
    role: Annotated[
        str | None,
        typer.Option(help="Read the trust policy of this IAM role (ambient AWS credentials)."),
    ] = None,
    json_output: Json = False,
    fail_on: FailOn = "high",
    debug: Debug = False,
) -> int:
    """Lint an AWS role trust policy for OIDC federation and chaining."""
    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.audit import trust_policy as linter  # noqa: PLC0415

    if (file is None) == (role is None):
        raise UsageError("give a trust policy FILE or --role NAME", "pass exactly one of them")
    if file is not None:
        document, lines = linter.load(file)
        findings = linter.lint(document, file, lines)
    else:
        assert role is not None
        findings = linter.lint(linter.from_role(role, dict(os.environ)), f"role/{role}")
    if json_output:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        render.findings(findings, file or f"role {role}")
    return _gate(findings, fail_on)


from nhi_invoke.cli import audit_trace  # noqa: E402, F401 - registers `audit trace`

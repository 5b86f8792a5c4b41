"""`nhi-invoke audit show|verify|key init|pipelines|trust-policy`."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from nhi_invoke.audit.findings import Finding, Rule, checked_severity, gate
from nhi_invoke.cli.commands import app
from nhi_invoke.cli.help import NhiTyper
from nhi_invoke.cli.options import Debug, LedgerKeyFile, json_option
from nhi_invoke.errors import ConfigError, UsageError
from nhi_invoke.figures import plural

if TYPE_CHECKING:
    from nhi_invoke.ledger.key import LedgerKey
    from nhi_invoke.ledger.verify import Verification

audit_app = NhiTyper(help="Audit the ledger, pipelines and trust policies (no cloud access).")
key_app = NhiTyper(help="The ledger's HMAC key.")
audit_app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")

LedgerArgument = Annotated[
    str | None,
    typer.Argument(
        help="The ledger [default: NHI_LEDGER, or the one `run` writes].",
        show_default=False,
        metavar="[LEDGER]",
    ),
]


def _ledger(path: str | None) -> str:
    """The ledger a command reads; one that does not exist is a configuration error."""
    from nhi_invoke.ledger import path_for  # noqa: PLC0415

    found = path_for(path, os.environ)
    if os.path.isdir(found):
        raise ConfigError(
            f"cannot read the ledger {found}: Is a directory",
            "pass the ledger file's path (the folder holds it: e.g. ledger.jsonl inside it)",
        )
    if not os.path.isfile(found):
        where = "the ledger" if path else "the ledger (NHI_LEDGER, or the one `run` writes)"
        sandbox = os.path.join(os.path.dirname(found), "sandbox-ledger.jsonl")
        hint = "pass the ledger's path (on CI: $RUNNER_TEMP/nhi-invoke/ledger.jsonl, or the "
        hint += "job's ledger artifact)"
        if not path and os.path.isfile(sandbox):
            hint += f"; the sandbox's is {sandbox}"
        raise ConfigError(f"{where} {found} does not exist", hint)
    return found


HOW_TO_KEY = (
    "set NHI_LEDGER_KEY, pass --ledger-key-file, or run 'nhi-invoke audit key init' on the "
    "machine that wrote it"
)


def _key(key_file: str | None) -> LedgerKey | None:
    from nhi_invoke.ledger import key as ledger_key  # noqa: PLC0415

    return ledger_key.load(os.environ, key_file)


def _verified(
    path: str, head: str | None = None, key_file: str | None = None
) -> tuple[Verification, str]:
    """The ledger checked as `audit verify` checks it, and what was checked."""
    from nhi_invoke.ledger.verify import verify as verify_ledger  # noqa: PLC0415

    try:
        result = verify_ledger(path, _key(key_file), head)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the ledger {path}: {exc.strerror}", "pass the ledger's path"
        ) from exc
    checked = (
        f"hash chain and HMACs (key {result.key_id})"
        if result.key_id
        else f"hash chain only ({HOW_TO_KEY} to check HMACs too)"
    )
    return result, checked


def _verification_dict(result: Verification, checked: str) -> dict[str, object]:
    return {
        "ok": result.ok,
        "lines": result.lines,
        "head": result.head,
        "broken_line": result.broken_line,
        "reason": result.reason,
        "key_id": result.key_id,
        "checked": checked,
    }


@audit_app.command()
def show(
    ledger: LedgerArgument = None,
    step: Annotated[str | None, typer.Option(help="Only this step.", metavar="STEP")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only invocations started since this time (2026-11-28T12:00:00Z), or this "
            "long ago (30m, 12h, 7d).",
            metavar="WHEN",
        ),
    ] = None,
    invocation: Annotated[
        str | None, typer.Option(help="Only this invocation.", metavar="ID")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="Only invocations for this task (--task-id, task_id=).", metavar="TASK"),
    ] = None,
    agent: Annotated[
        str | None, typer.Option(help="Only invocations by this agent.", metavar="AGENT")
    ] = None,
    json_output: Annotated[bool, json_option("the invocations and the ledger's check")] = False,
    debug: Debug = False,
) -> int:
    """One row per invocation: step, CI run, principals, expiry, exit, how it ended, exposure.

    The ledger is verified first, as 'audit verify' does: a broken one is still listed, with
    a warning, and the exit code is 1.
    """
    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.audit.show import as_dict, summarize  # noqa: PLC0415
    from nhi_invoke.cli.audit_trace import parse_time  # noqa: PLC0415

    path = _ledger(ledger)
    started_since = parse_time(since, "--since")
    result, checked = _verified(path)
    rows = summarize(
        path,
        datetime.now(UTC),
        os.environ,
        step=step,
        since=started_since,
        invocation=invocation,
        task=task,
        agent=agent,
    )
    if json_output:
        body = {
            "ledger": path,
            "verification": _verification_dict(result, checked),
            "invocations": [as_dict(r) for r in rows],
        }
        print(render.envelope("audit show", body))
    else:
        render.invocations(rows)
    if not result.ok:
        print(
            f"nhi-invoke: warning: {path}: line {result.broken_line} {result.reason}; these "
            f"rows may not be what was recorded (run 'nhi-invoke audit verify {path}')",
            file=sys.stderr,
        )
        return 1
    return 0


@audit_app.command()
def verify(
    ledger: LedgerArgument = None,
    head: Annotated[
        str | None,
        typer.Option(
            help="The head hash the job summary showed: also catches a cut or changed last line.",
            metavar="HASH",
        ),
    ] = None,
    ledger_key_file: LedgerKeyFile = None,
    require_hmac: Annotated[
        bool,
        typer.Option(
            "--require-hmac",
            help="Fail unless every line carries a valid HMAC: without a key, anyone could "
            "have rewritten the ledger and its chain.",
        ),
    ] = False,
    json_output: Annotated[bool, json_option("the result")] = False,
    debug: Debug = False,
) -> int:
    """Check the hash chain (and the HMACs, with a key); exit 1 at the first broken line."""
    from nhi_invoke import render  # noqa: PLC0415

    path = _ledger(ledger)
    if require_hmac and _key(ledger_key_file) is None:
        checked = f"nothing; {HOW_TO_KEY}"
        if json_output:
            body = {"ledger": path, "ok": False, "reason": "no HMAC key", "checked": checked}
            print(render.envelope("audit verify", body))
            return 1
        print(f"{path}: no HMAC key to check it with (--require-hmac)", file=sys.stderr)
        print(f"checked: {checked}", file=sys.stderr)
        return 1
    result, checked = _verified(path, head, ledger_key_file)
    if json_output:
        body = {"ledger": path, **_verification_dict(result, checked)}
        print(render.envelope("audit verify", body))
        return 0 if result.ok else 1
    if not result.ok:
        print(f"{path}: line {result.broken_line} {result.reason}", file=sys.stderr)
        print(f"checked: {checked}", file=sys.stderr)
        return 1
    if result.key_id:
        print(f"{path}: {plural(result.lines, 'line')} intact, head {result.head}")
    else:
        print(
            f"{path}: {plural(result.lines, 'line')}, hash chain consistent (no HMAC key: anyone "
            f"could have re-chained it), head {result.head}"
        )
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
        help="Exit 1 when a finding is at least this severe (info, low, medium, high, critical).",
        metavar="SEVERITY",
    ),
]
Sarif = Annotated[
    str | None,
    typer.Option(help="Also write SARIF 2.1.0 to this file ('-' for stdout).", metavar="FILE"),
]
JsonReport = Annotated[
    bool, typer.Option("--json", help="Print the report as one JSON object (docs/audit.md).")
]


def _envelope(command: str, body: dict[str, object]) -> str:
    from nhi_invoke import render  # noqa: PLC0415

    return render.envelope(command, body)


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
        str,
        typer.Argument(
            help="A repository checkout (or a folder, or one pipeline file).", metavar="[PATH]"
        ),
    ] = ".",
    json_output: JsonReport = False,
    sarif: Sarif = None,
    fail_on: FailOn = "high",
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Leave out files and folders matching this glob, relative to PATH (repeatable).",
            metavar="GLOB",
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
        list[str] | None,
        typer.Argument(help="Trust policy JSON files.", show_default=False, metavar="[FILE]..."),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="Read the trust policy of this IAM role (ambient AWS credentials).",
            metavar="NAME",
        ),
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

"""`nhi-invoke run`'s plain function: prepare the invocation from its arguments, then print
its plan (`--dry-run`) or run it. Both of `run`'s parsers call it (`cli/run_arguments.py`);
nothing here imports the CLI framework."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from nhi_invoke.errors import NhiError, UsageError

if TYPE_CHECKING:
    from nhi_invoke.cli.run_arguments import RunArguments
    from nhi_invoke.plan import Plan


def execute(arguments: RunArguments) -> int:
    """Run a command with credentials minted for this one invocation."""
    if not arguments.command:
        raise UsageError("no command given", "put the command after '--': run [OPTIONS] -- CMD")
    from nhi_invoke.invocation.prepare import RunRequest, prepare  # noqa: PLC0415

    request = RunRequest(given=dict(arguments.given), command=arguments.command)
    from nhi_invoke.ci.github import claim_stdout  # noqa: PLC0415

    claim_stdout()  # a redirected stdout is the step's output file (ci/github.py)
    prepared = prepare(request, os.environ, os.getcwd())
    if arguments.dry_run:
        from nhi_invoke import brokers, render  # noqa: PLC0415 - rich only when a table is drawn

        known = tuple(d.name for d in brokers.declarations(os.environ))
        render.plan(prepared.plan, as_json=arguments.json, known=known)
        return 0
    from nhi_invoke.invocation.process import run as run_invocation  # noqa: PLC0415

    if not arguments.json:
        return run_invocation(prepared, quiet=arguments.quiet)
    try:
        exit_code = run_invocation(prepared, quiet=arguments.quiet)
    except NhiError as error:
        _print_outcome(prepared.plan, exit_code=error.exit_code, error=error)
        raise
    _print_outcome(prepared.plan, exit_code=exit_code, error=None)
    return exit_code


def _print_outcome(plan: Plan, *, exit_code: int, error: NhiError | None) -> None:
    """`run --json`: one line after the command's output, read back from the ledger."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.audit.show import summarize  # noqa: PLC0415

    try:
        rows = summarize(
            plan.ledger_path, datetime.now(UTC), os.environ, invocation=plan.invocation_id
        )
    except NhiError:
        rows = []  # nothing was written (the ledger could not be opened)
    credentials = [c.as_dict() for c in rows[0].credentials] if rows else []
    body = {
        "dry_run": False,
        "invocation_id": plan.invocation_id,
        "step_id": plan.step_id,
        "exit_code": exit_code,
        "error": error.one_line() if error is not None else None,
        "ledger_path": plan.ledger_path,
        "credentials": credentials,
    }
    print(render.envelope("run", body, indent=None), flush=True)

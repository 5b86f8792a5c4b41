"""`nhi-invoke revoke [--invocation ID] [--ledger PATH]`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from nhi_invoke.cli.commands import app
from nhi_invoke.cli.options import (
    Debug,
    LedgerKeyFile,
    LedgerPath,
    TokenEnv,
    TokenFile,
    json_option,
)


@app.command()
def revoke(
    invocation: Annotated[
        str | None,
        typer.Option(
            help="Only this invocation (even if it still runs: an emergency stop).", metavar="ID"
        ),
    ] = None,
    ledger: LedgerPath = None,
    ledger_key_file: LedgerKeyFile = None,
    token_file: TokenFile = None,
    token_env: TokenEnv = None,
    json_output: Annotated[bool, json_option("what was done to each credential")] = False,
    debug: Debug = False,
) -> int:
    """Revoke or record every credential the ledger shows as still open (after a crash)."""
    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.invocation.recovery import RecoveryRequest, recover  # noqa: PLC0415

    outcomes = recover(
        RecoveryRequest(
            ledger=ledger,
            invocation=invocation,
            token_file=token_file,
            token_env=token_env,
            ledger_key_file=ledger_key_file,
        ),
        os.environ,
    )
    if json_output:
        body = {"outcomes": [render.outcome_dict(o) for o in outcomes]}
        print(render.envelope("revoke", body))
    else:
        render.outcomes(outcomes)
    failed = next((o.error for o in outcomes if o.error is not None), None)
    if failed is not None:
        raise failed
    return 0

"""`nhi-invoke revoke [--invocation ID] [--ledger PATH]`, plus the options brokers declare for
recovery (`BrokerDeclaration.recovery_options`, e.g. a token allowed to revoke by id)."""

from __future__ import annotations

import inspect
import os
from typing import Annotated, Any

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
from nhi_invoke.cli.run import option_parameter
from nhi_invoke.invocation.recovery import recovery_options

Invocation = Annotated[
    str | None,
    typer.Option(
        help="Only this invocation (even if it still runs: an emergency stop).", metavar="ID"
    ),
]
Json = Annotated[bool, json_option("what was done to each credential")]


def revoke(
    invocation: str | None = None,
    ledger: str | None = None,
    ledger_key_file: str | None = None,
    token_file: str | None = None,
    token_env: str | None = None,
    json_output: bool = False,
    debug: bool = False,
    **given: Any,
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
            given=given,
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


def _signature() -> inspect.Signature:
    def fixed(name: str, annotation: Any) -> inspect.Parameter:
        default = False if name in ("json_output", "debug") else None
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )

    return inspect.Signature(
        [
            fixed("invocation", Invocation),
            fixed("ledger", LedgerPath),
            fixed("ledger_key_file", LedgerKeyFile),
            fixed("token_file", TokenFile),
            fixed("token_env", TokenEnv),
            *(
                option_parameter(option, with_sources=True)
                for option in recovery_options(os.environ)
            ),
            fixed("json_output", Json),
            fixed("debug", Debug),
        ],
        return_annotation=int,
    )


revoke.__signature__ = _signature()  # type: ignore[attr-defined]
app.command()(revoke)

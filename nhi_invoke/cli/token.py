"""`nhi-invoke token [--audience A] [--verify]`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from nhi_invoke import brokers
from nhi_invoke.cli.commands import app
from nhi_invoke.cli.options import Debug, TokenEnv, TokenFile, json_option
from nhi_invoke.errors import ConfigError


def _default_audience() -> str:
    """The first broker's fixed default audience (the first built-in's)."""
    for declared in brokers.declarations(os.environ):
        option = next((o for o in declared.options if o.name == declared.audience_option), None)
        if option is not None and isinstance(option.default, str):
            return option.default
    return ""


@app.command()
def token(
    audience: Annotated[
        str,
        typer.Option(
            help="Audience to request and check (the first broker's by default).",
            metavar="AUDIENCE",
        ),
    ] = _default_audience(),
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Check the signature against the issuer's JWKS (network)."),
    ] = False,
    token_file: TokenFile = None,
    token_env: TokenEnv = None,
    json_output: Annotated[bool, json_option("the claims and checks")] = False,
    debug: Debug = False,
) -> int:
    """Show the OIDC token's claims (never the token) and whether it would pass."""
    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.tokeninfo import inspect  # noqa: PLC0415

    if not audience:
        raise ConfigError("no broker has a default audience", "pass --audience")
    report = inspect(
        os.environ, audience=audience, token_file=token_file, token_env=token_env, verify=verify
    )
    if json_output:
        print(render.envelope("token", render.token_dict(report)))
    else:
        render.token(report)
    if report.problem is not None:
        raise report.problem
    return 0

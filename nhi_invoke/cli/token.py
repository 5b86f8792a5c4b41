"""`nhi-invoke token [--audience A] [--verify]`."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from nhi_invoke.cli.commands import app
from nhi_invoke.cli.options import Debug, Json, TokenEnv, TokenFile
from nhi_invoke.config import DEFAULT_AWS_AUDIENCE


@app.command()
def token(
    audience: Annotated[
        str, typer.Option(help="Audience to request and check.")
    ] = DEFAULT_AWS_AUDIENCE,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Check the signature against the issuer's JWKS (network)."),
    ] = False,
    token_file: TokenFile = None,
    token_env: TokenEnv = None,
    json_output: Json = False,
    debug: Debug = False,
) -> int:
    """Show the OIDC token's claims (never the token) and whether it would pass."""
    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.tokeninfo import inspect  # noqa: PLC0415

    report = inspect(
        os.environ, audience=audience, token_file=token_file, token_env=token_env, verify=verify
    )
    if json_output:
        print(json.dumps(render.token_dict(report), indent=2))
    else:
        render.token(report)
    if report.problem is not None:
        raise report.problem
    return 0

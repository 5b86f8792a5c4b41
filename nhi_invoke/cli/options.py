"""Option types shared by the commands. `run`'s own options come from the settings registry
(`cli/run.py` builds them), so each is declared once, next to what it configures."""

from __future__ import annotations

from typing import Annotated

import typer

from nhi_invoke.cli.help import HELP_OPTIONS

PASSTHROUGH = {"allow_interspersed_args": False, "help_option_names": HELP_OPTIONS}

TokenFile = Annotated[
    str | None,
    typer.Option(help="Read the OIDC token from this file [env: NHI_TOKEN_FILE].", metavar="PATH"),
]
TokenEnv = Annotated[
    str | None,
    typer.Option(
        help="Read the OIDC token from this variable [env: NHI_TOKEN_ENV].", metavar="NAME"
    ),
]
LedgerPath = Annotated[
    str | None,
    typer.Option("--ledger", help="Audit ledger path [env: NHI_LEDGER].", metavar="PATH"),
]
LedgerKeyFile = Annotated[
    str | None,
    typer.Option(
        help="Read the ledger's HMAC key from this file (mode 0600) or descriptor (fd:N) "
        "\\[env: NHI_LEDGER_KEY_FILE; else NHI_LEDGER_KEY, or the OS keyring].",
        metavar="PATH|fd:N",
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan; mint and run nothing.")]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing of our own unless it fails.")
]
Debug = Annotated[bool, typer.Option("--debug", help="Show retries, and tracebacks on errors.")]
Command = Annotated[
    list[str] | None,
    typer.Argument(help="The command, after '--'.", show_default=False, metavar="-- CMD [ARG]..."),
]


def json_option(what: str) -> object:
    """`--json`, saying what this command prints with it (one JSON object, docs/reference.md)."""
    return typer.Option("--json", help=f"Print {what} as one JSON object instead of text.")

"""The typer app: one module per command registers itself here."""

from __future__ import annotations

import typer

from nhi_invoke import __version__

app = typer.Typer(
    name="nhi-invoke",
    help="Run each pipeline step under its own short-lived cloud identity.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"nhi-invoke {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    """Run each pipeline step under its own short-lived cloud identity."""


from nhi_invoke.cli import audit as _audit  # noqa: E402, F401 - registers the commands
from nhi_invoke.cli import revoke as _revoke  # noqa: E402, F401
from nhi_invoke.cli import run as _run  # noqa: E402, F401
from nhi_invoke.cli import sandbox as _sandbox  # noqa: E402, F401
from nhi_invoke.cli import token as _token  # noqa: E402, F401

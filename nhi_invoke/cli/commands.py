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


# Each command lives in its own module; only the one invoked is imported (and all of them
# for the top-level help), so `run` pays for no other command's imports.
COMMAND_MODULES = {
    "run": "nhi_invoke.cli.run",
    "sandbox": "nhi_invoke.cli.sandbox",
    "token": "nhi_invoke.cli.token",
    "revoke": "nhi_invoke.cli.revoke",
    "audit": "nhi_invoke.cli.audit",
}


def app_for(args: list[str]) -> typer.Typer:
    """The app with the command `args` names registered (every command when it names none)."""
    import importlib  # noqa: PLC0415

    name = next((a for a in args if not a.startswith("-")), None)
    for module in [COMMAND_MODULES[name]] if name in COMMAND_MODULES else COMMAND_MODULES.values():
        importlib.import_module(module)
    return app

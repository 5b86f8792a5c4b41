"""The typer app: one module per command registers itself here."""

from __future__ import annotations

import typer

from nhi_invoke import __version__
from nhi_invoke.cli.help import NhiTyper

app = NhiTyper(name="nhi-invoke")


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
    """Run each pipeline step under its own short-lived cloud identity.

    Start with 'nhi-invoke sandbox -- CMD' to try it on 127.0.0.1, 'nhi-invoke run
    --dry-run … -- CMD' to see what a step would get, and 'nhi-invoke COMMAND -h' for
    each command's options. Exit codes: the command's own; 2 usage; 65 token; 69
    unreachable; 77 refused; 78 configuration; 126/127 command; 70 a bug of ours.
    """


# Each command lives in its own module; only the one invoked is imported (and all of them
# for the top-level help), so `run` pays for no other command's imports. In this order in
# the help.
COMMAND_MODULES = {
    "run": "nhi_invoke.cli.run",
    "sandbox": "nhi_invoke.cli.sandbox",
    "token": "nhi_invoke.cli.token",
    "revoke": "nhi_invoke.cli.revoke",
    "audit": "nhi_invoke.cli.audit",
    "completion": "nhi_invoke.cli.completion",
}


def app_for(args: list[str]) -> typer.Typer:
    """The app with the command `args` names registered (every command when it names none)."""
    import importlib  # noqa: PLC0415

    name = next((a for a in args if not a.startswith("-")), None)
    for module in [COMMAND_MODULES[name]] if name in COMMAND_MODULES else COMMAND_MODULES.values():
        importlib.import_module(module)
    return app

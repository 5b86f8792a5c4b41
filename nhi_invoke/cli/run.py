"""`nhi-invoke run [OPTIONS] -- CMD [ARG...]`.

Its options are built from the settings registry (the core's and every broker's
declarations), so an option is written once; each one's help shows its variables, its
config key and its default.
"""

from __future__ import annotations

import inspect
import os
from typing import Annotated, Any

import typer

from nhi_invoke import brokers, settings
from nhi_invoke.cli.commands import app
from nhi_invoke.cli.options import PASSTHROUGH, Command, Debug, DryRun, Json, Quiet
from nhi_invoke.settings.option import Kind, Option

_TYPES: dict[Kind, Any] = {
    Kind.TEXT: str | None,
    Kind.NUMBER: int | None,
    Kind.SWITCH: bool | None,
    Kind.LIST: list[str] | None,
}


def help_text(option: Option) -> str:
    """The option's help and where else it can come from; "\\[" keeps rich from taking the
    bracket for a markup tag and dropping it."""
    return f"{option.help} \\[{option.sources_text()}]"


def option_parameter(option: Option, panel: str | None) -> inspect.Parameter:
    """A declared option as a keyword parameter of a typer command."""
    flag = option.flag
    decls = (f"{flag}/--no-{flag[2:]}",) if option.kind is Kind.SWITCH else (flag,)
    info = typer.Option(
        *decls,
        help=help_text(option),
        metavar=option.metavar,
        show_default=False,
        rich_help_panel=panel,
    )
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[_TYPES[option.kind], info],
    )


def _signature() -> inspect.Signature:
    titles = {d.name: d.title for d in brokers.declarations(os.environ)}
    declared = [
        option_parameter(option, titles.get(option.group))
        for option in settings.options(os.environ)
        if option.cli
    ]

    def fixed(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )

    return inspect.Signature(
        [
            inspect.Parameter(
                "command",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=None,
                annotation=Command,
            ),
            *declared,
            fixed("dry_run", DryRun, False),
            fixed("json", Json, False),
            fixed("quiet", Quiet, False),
            fixed("debug", Debug, False),
        ],
        return_annotation=int,
    )


def run(
    command: list[str] | None = None,
    *,
    dry_run: bool = False,
    json: bool = False,
    quiet: bool = False,
    debug: bool = False,
    **given: Any,
) -> int:
    """Run a command with credentials minted for this one invocation."""
    if not command:
        raise typer.BadParameter("no command given; put it after '--'", param_hint="CMD")
    from nhi_invoke.invocation.prepare import RunRequest, prepare  # noqa: PLC0415

    request = RunRequest(
        given={name: tuple(v) if isinstance(v, list) else v for name, v in given.items()},
        command=tuple(command),
    )
    prepared = prepare(request, os.environ, os.getcwd())
    if dry_run:
        from nhi_invoke import render  # noqa: PLC0415 - rich only when a table is drawn

        known = tuple(d.name for d in brokers.declarations(os.environ))
        render.plan(prepared.plan, as_json=json, known=known)
        return 0
    from nhi_invoke.invocation.process import run as run_invocation  # noqa: PLC0415

    return run_invocation(prepared, quiet=quiet)


run.__signature__ = _signature()  # type: ignore[attr-defined]
app.command(context_settings=PASSTHROUGH)(run)

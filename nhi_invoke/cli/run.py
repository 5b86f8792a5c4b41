"""`nhi-invoke run [OPTIONS] -- CMD [ARG...]`.

Its options are built from the settings registry (the core's and every broker's
declarations), so an option is written once; its help is drawn from the registry too
(`RunCommand`): each option with its variables, its config key and its default.

`run`'s common lines never reach this command: `cli/run_parser.py` reads them without typer.
This one reads the rest (`-h`, and the lines that end in a usage error) and, like the lean
parser, hands its parameters to `cli/run_execute.py`.
"""

from __future__ import annotations

import inspect
import os
from typing import Annotated, Any

import typer
from typer import _click as click

from nhi_invoke import brokers, settings
from nhi_invoke.cli.commands import app
from nhi_invoke.cli.help import NhiCommand, PlainFormatter
from nhi_invoke.cli.options import PASSTHROUGH, Command, Debug, DryRun, Quiet
from nhi_invoke.cli.run_arguments import from_parameters
from nhi_invoke.cli.run_execute import execute
from nhi_invoke.settings.option import Kind, Option

# Numbers arrive as text and are converted by the registry, so that "abc" and "5" for the
# same option are both a configuration error (exit 78) naming the option and its fix.
_TYPES: dict[Kind, Any] = {
    Kind.TEXT: str | None,
    Kind.NUMBER: str | None,
    Kind.SWITCH: bool | None,
    Kind.LIST: list[str] | None,
}
INVOCATION_TITLE = "Invocation"

Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print JSON instead of text: the plan with --dry-run; else, after the command, "
        "one line with the outcome (invocation, principals, exit code, how each credential "
        "ended).",
    ),
]


def help_text(option: Option) -> str:
    """The option's help, then where else it can come from."""
    return f"{option.help}\n[{option.sources_text()}]"


def option_term(option: Option) -> str:
    """How the option is written: `--timeout SECONDS`, `--serve / --no-serve`."""
    if option.kind is Kind.SWITCH:
        return f"{option.flag} / --no-{option.flag[2:]}"
    return f"{option.flag} {option.metavar or 'TEXT'}"


def _sections(environ: dict[str, str] | os._Environ[str]) -> list[tuple[str, list[Option]]]:
    """The options by broker (in the registry's order), then the invocation's own."""
    declared = brokers.declarations(environ)
    sections: dict[str, tuple[str, list[Option]]] = {}
    for declaration in declared:
        primary = next(o for o in declaration.options if o.name == declaration.requires)
        title = f"{declaration.title} (used when {primary.flag} is given)"
        sections[declaration.name] = (title, [])
    sections["invocation"] = (INVOCATION_TITLE, [])
    for option in settings.options(environ):
        if option.cli and option.group in sections:
            sections[option.group][1].append(option)
    return [section for section in sections.values() if section[1]]


class RunCommand(NhiCommand):
    """`run`, whose help is drawn from the option registry."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] -- CMD [ARG]...")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        assert isinstance(formatter, PlainFormatter)
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(
                "Each option can also come from its variable and from nhi-invoke.toml "
                "([defaults], then [steps.<step-id>]): a flag wins over a variable, a "
                "variable over the file, the file over the default. A broker is used when "
                "its first option is given; its other options in [defaults] are ignored "
                "without it, but given as flags or variables they are an error."
            )
        for title, options in _sections(os.environ):
            with formatter.section(title):
                for option in options:
                    formatter.write_entry(option_term(option), help_text(option))
        variables = [o for o in settings.options(os.environ) if not o.cli]
        if variables:
            with formatter.section("Variables only"):
                for option in variables:
                    term = f"{option.env[0]}={option.metavar or 'TEXT'}"
                    formatter.write_entry(term, help_text(option))
        registry = {o.name for o in settings.options(os.environ)}
        rest = [
            record
            for param in self.get_params(ctx)
            if param.name not in registry and param.param_type_name == "option"
            if (record := param.get_help_record(ctx)) is not None
        ]
        with formatter.section("Output"):
            formatter.write_dl(rest)


def option_parameter(option: Option, *, with_sources: bool = False) -> inspect.Parameter:
    """A declared option as a keyword parameter of a typer command (`run` builds its own help
    from the registry; other commands show the sources in the option's help)."""
    flag = option.flag
    decls = (f"{flag}/--no-{flag[2:]}",) if option.kind is Kind.SWITCH else (flag,)
    text = help_text(option) if with_sources else option.help
    info = typer.Option(*decls, help=text, metavar=option.metavar, show_default=False)
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[_TYPES[option.kind], info],
    )


def _signature() -> inspect.Signature:
    declared = [option_parameter(option) for option in settings.options(os.environ) if option.cli]

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
    parameters = {"command": command, **given}
    parameters.update(dry_run=dry_run, json=json, quiet=quiet, debug=debug)
    return execute(from_parameters(parameters))


run.__signature__ = _signature()  # type: ignore[attr-defined]
app.command(context_settings=PASSTHROUGH, cls=RunCommand)(run)

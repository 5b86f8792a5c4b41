"""`nhi-invoke run [OPTIONS] -- CMD [ARG...]`.

Its options are built from the settings registry (the core's and every broker's
declarations), so an option is written once; its help is drawn from the registry too
(`RunCommand`): each option with its variables, its config key and its default.
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer import _click as click

from nhi_invoke import brokers, settings
from nhi_invoke.cli.commands import app
from nhi_invoke.cli.help import NhiCommand, PlainFormatter
from nhi_invoke.cli.options import PASSTHROUGH, Command, Debug, DryRun, Quiet
from nhi_invoke.errors import NhiError, UsageError
from nhi_invoke.settings.option import Kind, Option

if TYPE_CHECKING:
    from nhi_invoke.plan import Plan

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
    if not command:
        raise UsageError("no command given", "put the command after '--': run [OPTIONS] -- CMD")
    from nhi_invoke.invocation.prepare import RunRequest, prepare  # noqa: PLC0415

    request = RunRequest(
        given={name: tuple(v) if isinstance(v, list) else v for name, v in given.items()},
        command=tuple(command),
    )
    from nhi_invoke.ci.github import claim_stdout  # noqa: PLC0415

    claim_stdout()  # a redirected stdout is the step's output file (ci/github.py)
    prepared = prepare(request, os.environ, os.getcwd())
    if dry_run:
        from nhi_invoke import render  # noqa: PLC0415 - rich only when a table is drawn

        known = tuple(d.name for d in brokers.declarations(os.environ))
        render.plan(prepared.plan, as_json=json, known=known)
        return 0
    from nhi_invoke.invocation.process import run as run_invocation  # noqa: PLC0415

    if not json:
        return run_invocation(prepared, quiet=quiet)
    try:
        exit_code = run_invocation(prepared, quiet=quiet)
    except NhiError as error:
        _print_outcome(prepared.plan, error.exit_code, error)
        raise
    _print_outcome(prepared.plan, exit_code, None)
    return exit_code


def _print_outcome(plan: Plan, exit_code: int, error: NhiError | None) -> None:
    """`run --json`: one line after the command's output, read back from the ledger."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from nhi_invoke import render  # noqa: PLC0415
    from nhi_invoke.audit.show import summarize  # noqa: PLC0415

    try:
        rows = summarize(
            plan.ledger_path, datetime.now(UTC), os.environ, invocation=plan.invocation_id
        )
    except NhiError:
        rows = []  # nothing was written (the ledger could not be opened)
    credentials = [c.as_dict() for c in rows[0].credentials] if rows else []
    body = {
        "dry_run": False,
        "invocation_id": plan.invocation_id,
        "step_id": plan.step_id,
        "exit_code": exit_code,
        "error": error.one_line() if error is not None else None,
        "ledger_path": plan.ledger_path,
        "credentials": credentials,
    }
    print(render.envelope("run", body, indent=None), flush=True)


run.__signature__ = _signature()  # type: ignore[attr-defined]
app.command(context_settings=PASSTHROUGH, cls=RunCommand)(run)

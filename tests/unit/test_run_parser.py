"""`run`'s lean parser reads every line it accepts exactly as click reads it through typer's
`run` command, and declines every line it cannot read with certainty (typer then reads it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.main import get_command

from nhi_invoke import settings
from nhi_invoke.cli import run as run_command
from nhi_invoke.cli.commands import app_for
from nhi_invoke.cli.help import NhiTyper
from nhi_invoke.cli.options import PASSTHROUGH
from nhi_invoke.cli.run_arguments import from_parameters
from nhi_invoke.cli.run_parser import OUTPUT_FLAGS, parameters
from nhi_invoke.settings.option import Kind, Option

WITH_FAKE = {"NHI_BROKER_MODULES": "tests.fake_broker.declaration"}
ROLE = "arn:aws:iam::123456789012:role/deploy"


def _typer_run(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """typer's `run` command for this environment: the app's own when the environment adds
    no broker; else one built by the same code (`cli/run.py`) with the plug-in's options."""
    if not environ:
        return get_command(app_for(["run"])).commands["run"]  # type: ignore[attr-defined]
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    def run(**given: Any) -> int:
        return 0

    run.__signature__ = run_command._signature()  # type: ignore[attr-defined]
    app = NhiTyper(name="nhi-invoke")
    app.command(context_settings=PASSTHROUGH, cls=run_command.RunCommand)(run)
    app.command(name="other")(lambda: None)  # two commands: typer builds a group
    return get_command(app).commands["run"]  # type: ignore[attr-defined]


def _forms(option: Option) -> Iterator[list[str]]:
    """Every form of the option people write."""
    flag = option.flag
    if option.kind is Kind.SWITCH:
        off = f"--no-{flag[2:]}"
        yield from ([flag], [off], [flag, off], [off, flag])
    elif option.kind is Kind.LIST:
        yield from ([flag, "a"], [f"{flag}=a"], [flag, "a", f"{flag}=b,c", flag, "a"], [flag, ""])
    else:
        value = "5" if option.kind is Kind.NUMBER else "some value"
        yield from ([flag, value], [f"{flag}={value}"], [f"{flag}="], [f"{flag}=a=b"])
        yield [flag, "first", flag, "last"]  # the last one wins
        yield [flag, "-5"]  # as click does: the next argument is the value, dash or not
        yield [flag, "--"]


def _corpus(options: tuple[Option, ...]) -> list[list[str]]:
    command = ["--", "aws", "s3", "--json", "-q", "--", "x"]
    lines = [[*form, *command] for option in options if option.cli for form in _forms(option)]
    lines += [[flag, *command] for flag in OUTPUT_FLAGS]
    everything = [arg for option in options if option.cli for arg in next(_forms(option))]
    lines += [
        [],
        ["--"],
        ["--", "--"],
        ["--", "-h"],
        ["-"],
        ["true"],
        ["--aws-role-arn", ROLE, "true", "--json", "--", "x"],  # the command starts at 'true'
        ["--dry-run", "--dry-run", "-q", "--quiet", "--debug", "--json", "--", "x"],
        ["--token-command", "--", "x", "y"],
        ["--step-id", "-h", "--", "true"],  # a value, not the help
        [*everything, "--dry-run", "--json", "-q", "--debug", *command],
    ]
    return lines


@pytest.mark.parametrize("environ", [{}, WITH_FAKE], ids=["built-in", "plug-in"])
def test_the_lean_parser_reads_every_form_as_click_does(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    options = settings.options(environ)
    command = _typer_run(environ, monkeypatch)
    corpus = _corpus(options)
    assert len(corpus) > 150
    for argv in corpus:
        expected = command.make_context("run", list(argv)).params
        assert parameters(argv, options) == expected, argv


def test_the_lean_parser_knows_every_flag_of_typers_command_and_no_other() -> None:
    command = get_command(app_for(["run"])).commands["run"]  # type: ignore[attr-defined]
    typer_flags = {
        flag
        for param in command.params
        if param.param_type_name == "option"
        for flag in (*param.opts, *param.secondary_opts)
    }
    options = settings.options({})
    accepted = {
        flag for flag in typer_flags if parameters([flag, "v", "--", "x"], options) is not None
    }
    assert accepted == typer_flags - {"-h", "--help"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus", "--", "x"],  # unknown
        ["--aws-role", ROLE, "--", "x"],  # an abbreviation
        ["--aws-role-arn"],  # a missing value
        ["--tag"],
        ["-h"],
        ["--help"],
        ["--aws-role-arn", ROLE, "-h", "--", "x"],
        ["-qh", "--", "x"],  # a cluster of short options
        ["-q=1", "--", "x"],
        ["--dry-run=yes", "--", "x"],  # a flag with a value
        ["--serve=true", "--", "x"],
        ["--no-serve=1", "--", "x"],
        ["--no-dry-run", "--", "x"],  # an output flag has no --no- form
        ["--no-aws-role-arn", "--", "x"],  # nor an option that takes a value
        ["---json", "--", "x"],
        ["--version"],
    ],
)
def test_the_lean_parser_declines_what_it_cannot_read_with_certainty(argv: list[str]) -> None:
    assert parameters(argv, settings.options({})) is None


def test_both_parsers_build_the_same_arguments() -> None:
    # typer hands `run` lists (None when absent), click tuples (empty when absent).
    from_typer = from_parameters(
        {"command": ["x", "--y"], "tags": ["a=b"], "gcp_scopes": None, "serve": False}
        | {"dry_run": True, "json": False, "quiet": False, "debug": False}
    )
    from_click = from_parameters(
        {"command": ("x", "--y"), "tags": ("a=b",), "gcp_scopes": (), "serve": False}
        | {"dry_run": True, "json": False, "quiet": False, "debug": False}
    )
    assert from_typer == from_click
    assert from_click.command == ("x", "--y")
    assert from_click.given == {"tags": ("a=b",), "gcp_scopes": None, "serve": False}
    assert from_click.dry_run
    assert from_parameters({"command": ()}).command is None

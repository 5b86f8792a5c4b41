"""Help that teaches: every command and group answers `-h`, `run --help` names every option's
variables, config key and default at 80 columns in a pipe, a bare group prints its help, and
click's own messages come out as our one line."""

from __future__ import annotations

import os
import subprocess

import pytest
from typer.main import get_command

from nhi_invoke import settings
from nhi_invoke.cli.commands import app_for
from tests.e2e.runs import NHI, imported_packages, run_nhi

pytestmark = pytest.mark.e2e


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the app, as the words that name it."""
    root = get_command(app_for([]))
    paths: list[tuple[str, ...]] = [()]

    def walk(command: object, path: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append((*path, name))
            walk(sub, (*path, name))

    walk(root, ())
    return paths


PATHS = _command_paths()


def _help(args: list[str], columns: int = 80) -> subprocess.CompletedProcess[str]:
    """`nhi-invoke ARGS` with stdout a pipe (as in a CI log), at `columns` columns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHI_")}
    return subprocess.run(
        [NHI, *args],
        env=env | {"COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_app_has_the_commands_the_readme_names() -> None:
    assert {" ".join(p) for p in PATHS} >= {
        "run", "sandbox", "token", "revoke", "completion", "audit", "audit show",
        "audit verify", "audit pipelines", "audit trust-policy", "audit trace", "audit key",
        "audit key init",
    }  # fmt: skip


@pytest.mark.parametrize("flag", ["-h", "--help"])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "nhi-invoke")
def test_every_command_and_group_answers_h(path: tuple[str, ...], flag: str) -> None:
    done = _help([*path, flag])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: {' '.join(('nhi-invoke', *path))} ")
    assert done.stderr == ""
    assert "<str>" not in done.stdout  # every option names what it takes
    assert max(len(line) for line in done.stdout.splitlines()) <= 80, done.stdout


@pytest.mark.parametrize("path", [(), ("audit",), ("audit", "key")], ids=" ".join)
def test_a_bare_group_prints_its_help_and_no_empty_error(path: tuple[str, ...]) -> None:
    done = _help(list(path))
    assert done.stdout.startswith("Usage: ")
    assert "Commands:" in done.stdout
    assert done.stderr == ""  # no "error: ;"
    assert done.returncode == 2  # no command ran: a script that meant to run one fails


def test_run_help_in_a_pipe_at_80_columns_names_every_variable_key_and_default() -> None:
    done = _help(["run", "--help"])
    assert done.returncode == 0
    text = done.stdout
    lines = text.splitlines()
    joined = " ".join(text.split())  # a sources line may wrap at a space, never in a word
    assert max(len(line) for line in lines) <= 80
    for option in settings.options({}):
        if option.cli:
            term = f"{option.flag} {option.metavar}" if option.metavar else option.flag
            # The whole name, at the start of its own line: never cut, never wrapped.
            assert any(line.strip().startswith(term) for line in lines), term
        for variable in option.env:
            assert variable in text, variable
        if option.from_config:
            assert f"config: {option.key}" in joined, option.key
        shown = option.shown_default
        if shown is not None:
            assert f"default: {shown}" in joined, option.name
    assert "\\[" not in text
    assert "…" not in text
    assert "─" not in text


def test_run_help_loads_no_broker_runtime_and_no_sdk() -> None:
    imported = imported_packages(["run", "--help"], {"PATH": os.environ["PATH"]})
    assert not imported & {"boto3", "botocore", "google", "rich", "jwt"}


@pytest.mark.parametrize(
    ("path", "dry_run"),
    [
        (("run",), True),
        (("token",), False),
        (("revoke",), False),
        (("audit", "show"), False),
        (("audit", "verify"), False),
        (("audit", "pipelines"), False),
        (("audit", "trust-policy"), False),
        (("audit", "trace"), False),
    ],
    ids=lambda p: " ".join(p) if isinstance(p, tuple) else str(p),
)
def test_each_json_option_says_what_that_command_prints(
    path: tuple[str, ...], dry_run: bool
) -> None:
    text = " ".join(_help([*path, "-h"]).stdout.split())
    entry = text.split("--json", 1)[1].split(" --", 1)[0]
    assert "JSON" in entry
    assert ("--dry-run" in text) == dry_run
    if not dry_run:
        assert "dry-run" not in entry


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (
            ["run", "--aws-role", "x", "--", "true"],
            2,
            "unknown option --aws-role; fix: did you mean",
        ),
        (["nope"], 2, "no such command 'nope'"),
        (["audit", "shw"], 2, "did you mean 'show'?"),
        (["completion"], 2, "missing argument 'SHELL'"),
        (["run", "--aws-duration"], 2, "option '--aws-duration' requires an argument"),
        (["audit", "trace", "--vault-audit-device"], 2, "requires an argument"),
    ],
)
def test_click_messages_come_out_as_one_line_with_the_fix(
    base_env: dict[str, str], args: list[str], code: int, needle: str
) -> None:
    result = run_nhi(args, base_env)
    assert result.code == code, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("nhi-invoke: error: ")
    assert needle in line
    assert "; fix: " in line
    assert ".;" not in line
    assert "Error:" not in line
    assert result.stdout == ""

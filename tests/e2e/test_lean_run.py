"""`nhi-invoke run` parses its common lines itself (`cli/run_parser.py`): it then imports
neither typer, its click, nor rich (rich only to draw `--dry-run`'s table), and does exactly
what typer's `run` does; any other line goes to typer, with today's help and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import imported_packages, run_nhi

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/deploy"
POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
FRAMEWORK = {"typer", "click", "rich"}
# typer's `run` command, reached as `main` reached it before `run` had a parser of its own.
TYPER_PATH = (
    "import sys\nfrom nhi_invoke.cli.app import _typer_main\nsys.exit(_typer_main(sys.argv[1:]))\n"
)


def _importing(
    args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`nhi-invoke ARGS` as a real process: its result (importtime's lines taken out of
    stderr) and the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nhi_invoke", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stderr.splitlines(keepends=True)
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in lines
        if line.startswith("import time:")
    }
    done.stderr = "".join(line for line in lines if not line.startswith("import time:"))
    return done, imported


def _typer(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", TYPER_PATH, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_dry_run_imports_no_cli_framework_and_rich_only_for_its_table(
    base_env: dict[str, str],
) -> None:
    line = ["run", "--dry-run", "--aws-role-arn", ROLE, "--step-id", "lean", "--", "true"]
    assert not imported_packages([*line[:2], "--json", *line[2:]], base_env) & FRAMEWORK
    # The table is drawn with rich: rich, and still no typer nor click.
    assert imported_packages(line, base_env) & FRAMEWORK == {"rich"}


def test_a_run_imports_no_cli_framework(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    line = ["run", "--aws-role-arn", sandbox["target_role_arn"], "--step-id", "lean"]
    assert not imported_packages([*line, "--", "true"], github_env) & FRAMEWORK
    assert not imported_packages([*line, "--quiet", "--json", "--", "true"], github_env) & FRAMEWORK


def test_an_error_on_the_lean_path_is_todays_line_and_exit_code(
    base_env: dict[str, str],
) -> None:
    # Values are checked by the registry on both paths: the same line, the same code (78).
    args = ["run", "--dry-run", "--aws-role-arn", ROLE, "--timeout", "abc", "--", "true"]
    done, imported = _importing(args, base_env)
    assert not imported & FRAMEWORK
    today = _typer(args, base_env)
    assert (done.returncode, done.stdout) == (78, "")
    assert done.stderr == (
        "nhi-invoke: error: --timeout 'abc' is not a whole number of seconds; fix: give the "
        "number of seconds, e.g. 900 for 15 minutes\n"
    )
    # typer's path leaves the error to `main` (which renders it): the message is the same.
    assert "--timeout 'abc' is not a whole number of seconds" in today.stderr
    done, imported = _importing(["run", "--dry-run"], base_env)
    assert not imported & FRAMEWORK
    assert (done.returncode, done.stderr) == (
        2,
        "nhi-invoke: error: no command given; fix: put the command after '--': run [OPTIONS] "
        "-- CMD\n",
    )


@pytest.mark.parametrize(
    ("args", "code", "start"),
    [
        (["--bogus", "--", "true"], 2, "nhi-invoke: error: unknown option --bogus; fix: see "),
        (["--aws-role", ROLE, "--", "true"], 2, "nhi-invoke: error: unknown option --aws-role; "),
        (["--dry-run", "--aws-role-arn"], 2, "nhi-invoke: error: option '--aws-role-arn' requires"),
        (["--dry-run=1", "--", "true"], 2, "nhi-invoke: error: option '--dry-run' does not take"),
        (["-qx", "--", "true"], 2, "nhi-invoke: error: unknown option -x; fix: see "),
        (["-h"], 0, "Usage: nhi-invoke run [OPTIONS] -- CMD [ARG]..."),
        (["--aws-role-arn", ROLE, "--help", "--", "true"], 0, "Usage: nhi-invoke run [OPTIONS]"),
    ],
    ids=["unknown", "abbreviated", "missing-value", "flag-value", "cluster", "-h", "--help"],
)
def test_what_the_lean_parser_declines_typer_answers_as_today(
    args: list[str], code: int, start: str, base_env: dict[str, str]
) -> None:
    done, imported = _importing(["run", *args], base_env)
    assert "typer" in imported  # typer read the line
    today = _typer(["run", *args], base_env)
    assert (done.returncode, done.stdout, done.stderr) == (
        today.returncode,
        today.stdout,
        today.stderr,
    )
    assert done.returncode == code
    assert (done.stdout or done.stderr).startswith(start)


def test_the_plan_is_the_same_on_both_paths_with_variables_and_a_config_file(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "nhi-invoke.toml").write_text(
        '[defaults]\naws-region = "eu-west-1"\naws-duration = 1800\n'
        '[steps.deploy]\ntags = { team = "web" }\n'
    )
    env = base_env | {
        "NHI_STEP_ID": "deploy",
        "NHI_AWS_OIDC_ROLE_ARN": "arn:aws:iam::123456789012:role/entry",
        "NHI_TIMEOUT": "30",
        "NHI_BROKER_MODULES": "tests.fake_broker.declaration",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    lines = [
        ["--aws-role-arn", ROLE, "--tag", "stage=prod", "--no-serve", "--aws-revoke"],
        [f"--aws-role-arn={ROLE}", "--expect-duration=7200", "--aws-policy-arn", POLICY, "-q"],
        ["--aws-role-arn", ROLE, "--fake-url", "http://127.0.0.1:9/fake", "--agent", "bot"],
    ]
    for line in lines:
        args = ["run", "--dry-run", "--json", *line, "--", "sh", "-c", "echo --json"]
        lean = run_nhi(args, env, cwd=work)
        today = _typer(args, env, cwd=work)
        assert lean.code == today.returncode == 0, lean.stderr + today.stderr
        plans = []
        for text in (lean.stdout, today.stdout):
            # Each invocation has its own id (in session names, tags…): the rest is the same.
            invocation = json.loads(text)["invocation_id"]
            plans.append(json.loads(text.replace(invocation, "ID")))
        assert plans[0] == plans[1]
        assert plans[0]["argv"] == ["sh", "-c", "echo --json"]


def _to_a_closed_pipe(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ARGV with its stdout a pipe whose reader has gone (`| head` that has exited)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            argv, env=env, stdout=writer, stderr=subprocess.PIPE, text=True, check=False
        )
    finally:
        os.close(writer)
    return done.returncode, done.stderr


@pytest.mark.parametrize("unbuffered", [True, False], ids=["write-fails", "exit-flush-fails"])
def test_a_reader_that_went_away_ends_the_lean_path_as_typers(
    unbuffered: bool, base_env: dict[str, str]
) -> None:
    # Unbuffered, the plan's own write fails (typer's path: exit 1, nothing said); buffered,
    # only the interpreter's last flush does (Python's own message, 120) on both paths.
    env = base_env | ({"PYTHONUNBUFFERED": "1"} if unbuffered else {})
    args = ["run", "--dry-run", "--json", "--aws-role-arn", ROLE, "--", "true"]
    lean = _to_a_closed_pipe([sys.executable, "-m", "nhi_invoke", *args], env)
    today = _to_a_closed_pipe([sys.executable, "-c", TYPER_PATH, *args], env)
    assert lean == today
    assert lean[0] == (1 if unbuffered else 120)

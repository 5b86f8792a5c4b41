"""Every documented command works: each `nhi-invoke …` line of README.md, of every docs/ page
(pages that land later are found too) and of every file of ci-examples/ runs here, found as
`tests/docs_commands.py` describes.

How each line runs:
- `run` gets `--dry-run` (it would mint) and must exit as documented (0 unless a console
  block's `$ echo $?` says otherwise), in a folder holding the `nhi-invoke.toml` its page shows;
- a step that uses the action runs `nhi-invoke run --dry-run` with the variables the action
  sets from its inputs;
- `sandbox` runs for real (it brings its emulators); `token`, `revoke` and the audits run in a
  GitHub job's environment against the session's sandbox, in a folder holding what the pages
  name: `ledger.jsonl` (a real run's), `edited.jsonl` (its line 2 edited), `trust.json`
  (aws.md's trust policy), `ci-examples/`;
- a synopsis (`audit show [LEDGER] [--json]`) and a code span that only names a command
  (`nhi-invoke audit show`) are checked against the command's help: every option they name
  exists;
- `SKIPPED` lists, with the reason, the only lines run elsewhere instead; the test checks
  that the other test really runs them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.docs_commands import ROOT, Documented, documented
from tests.e2e.runs import NHI, Result, run_nhi

pytestmark = pytest.mark.e2e
LEDGER_KEY = "documented-commands-ledger-key"
DOCUMENTED = documented()
COMMAND_WORDS = {"run", "sandbox", "token", "revoke", "completion", "audit", "show", "verify",
                 "pipelines", "trust-policy", "trace", "key", "init"}  # fmt: skip


@dataclass(frozen=True)
class Skip:
    """Lines run by another test instead (reviewed): those of `page` that start with `prefix`."""

    page: str
    prefix: str
    why: str


SKIPPED = (
    Skip(
        "docs/trace.md",
        "nhi-invoke audit trace artifacts/",
        "they need CloudTrail, GCP and Vault audit logs and a real OpenBao with an HMAC'd audit "
        "device: tests/e2e/test_trace_docs.py runs every one of them against those",
    ),
    Skip(
        "docs/agents.md",
        "nhi-invoke sandbox --ready-file",
        "it serves until stopped, for the example started next to it: "
        "tests/e2e/test_agents_docs.py runs the page's shell lines together, as written",
    ),
)


def _skip(line: Documented) -> Skip | None:
    page = line.where.split(":", 1)[0]
    return next((s for s in SKIPPED if s.page == page and line.text.startswith(s.prefix)), None)


def test_the_docs_hold_command_lines_from_every_source() -> None:
    pages = {d.where.split(":", 1)[0] for d in DOCUMENTED}
    assert {"README.md", "docs/reference.md", "docs/aws.md", "docs/gcp.md"} <= pages
    examples = {p for p in pages if p.startswith("ci-examples/")}
    # Every CI example holds a command line or an action step.
    assert examples == {
        str(p.relative_to(ROOT)) for p in (ROOT / "ci-examples").rglob("*") if p.is_file()
    }
    assert sum(not d.synopsis for d in DOCUMENTED) >= 80


def _run_elsewhere(page: str) -> set[tuple[str, ...]]:
    """The command lines of `page` that its own test runs."""
    from tests.e2e.test_agents_docs import SHELL_LINES  # noqa: PLC0415
    from tests.e2e.test_trace_docs import commands  # noqa: PLC0415

    lines = {"docs/trace.md": commands(), "docs/agents.md": SHELL_LINES}[page]
    return {tuple(shlex.split(line)) for line in lines}


@pytest.mark.parametrize("page", sorted({s.page for s in SKIPPED}))
def test_the_skipped_lines_are_the_ones_the_other_test_runs(page: str) -> None:
    skipped = {
        tuple(shlex.split(d.text))
        for d in DOCUMENTED
        if (skip := _skip(d)) is not None and skip.page == page
    }
    assert skipped
    assert skipped <= _run_elsewhere(page)


@dataclass(frozen=True)
class World:
    folder: Path
    github: dict[str, str]  # a GitHub job's environment on the sandbox
    local: dict[str, str]  # a laptop's: no CI


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sandbox: dict[str, Any]) -> World:
    root = tmp_path_factory.mktemp("documented")
    folder = root / "work"
    folder.mkdir()
    home = root / "home"
    home.mkdir()
    local = {
        "PATH": os.path.dirname(NHI) + os.pathsep + os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "NHI_LEDGER_KEY": LEDGER_KEY,
        # `nhi-invoke audit key init` writes to this keyring, not the machine's.
        "PYTHON_KEYRING_BACKEND": "tests.keyring_file_backend.FileKeyring",
        "TEST_KEYRING_FILE": str(root / "keyring.json"),
        "PYTHONPATH": str(ROOT),
    }
    runner_temp = root / "runner-temp"
    runner_temp.mkdir()
    ledger = folder / "ledger.jsonl"
    github = (
        local | sandbox["environ"] | {"RUNNER_TEMP": str(runner_temp), "NHI_LEDGER": str(ledger)}
    )
    made = run_nhi(
        [
            "run",
            "--step-id",
            "deploy-web",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            "true",
        ],
        github,
    )
    assert made.code == 0, made.stderr
    lines = ledger.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"step_id":"deploy-web"', '"step_id":"deploy-api"', 1)
    (folder / "edited.jsonl").write_text("".join(lines))
    aws = (ROOT / "docs" / "aws.md").read_text()
    (folder / "trust.json").write_text(re.findall(r"```json\n(.*?)```", aws, re.DOTALL)[0])
    # The examples, and a repository's workflow for the audits of "." (audit.md).
    shutil.copytree(ROOT / "ci-examples", folder / "ci-examples")
    (folder / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / "ci-examples/github/aws-only.yml", folder / ".github/workflows/deploy.yml")
    for script in ("deploy.sh", "publish.sh"):
        (folder / script).write_text("#!/bin/sh\necho done\n")
        (folder / script).chmod(0o755)
    return World(folder, github, local)


def _folder(world: World, line: Documented) -> Path:
    """The world's folder, with the nhi-invoke.toml the line's page shows (if it shows one)."""
    if line.config is None:
        return world.folder
    folder = world.folder.parent / f"config-{abs(hash(line.config))}"
    if not folder.exists():
        shutil.copytree(world.folder, folder, symlinks=True)
        (folder / "nhi-invoke.toml").write_text(line.config)
    return folder


def _help_of(words: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [NHI, *words, "-h"], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, (words, done.stderr)
    return done.stdout


def _check_against_help(line: Documented, env: dict[str, str]) -> None:
    """A synopsis or a command's name: the command exists, and so does every option named."""
    words = re.findall(r"[\w-]+|--[\w-]+", line.text.split(" -- ", 1)[0])[1:]
    path = []
    for word in words:
        if word in COMMAND_WORDS and not word.startswith("-"):
            path.append(word)
        else:
            break
    text = _help_of(path, env)
    for option in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", line.text.split(" -- ", 1)[0]):
        assert option in text, f"{line.where}: {option} is not an option of {' '.join(path)}"


def _run(line: Documented, world: World) -> Result:
    argv = list(line.argv)
    command = argv[0] if argv else ""
    folder = _folder(world, line)
    if line.action_env:
        env = world.local | dict(line.action_env)
        return run_nhi(["run", "--dry-run", "--", "./deploy.sh"], env, cwd=folder)
    if command == "run" and "--dry-run" not in argv and argv[1:2] not in (["-h"], ["--help"]):
        argv.insert(1, "--dry-run")
        return run_nhi(argv, world.local, cwd=folder)
    if command == "sandbox":
        return run_nhi(argv, world.local, cwd=folder, timeout=180)
    return run_nhi(argv, world.github, cwd=folder)


@pytest.mark.parametrize("line", DOCUMENTED, ids=[d.name for d in DOCUMENTED])
def test_every_documented_command_line_runs(line: Documented, world: World) -> None:
    assert not line.problem, f"{line.where}: {line.problem}: {line.text}"
    skip = _skip(line)
    if skip is not None:
        pytest.skip(f"{skip.page}: {skip.why}")
    names_a_command = line.inline and all(w in COMMAND_WORDS for w in line.argv)
    if line.synopsis or names_a_command:
        _check_against_help(line, world.local)
        return
    result = _run(line, world)
    assert result.code == line.expected, (
        f"{line.where}: `{line.text}` exited {result.code}, not {line.expected}:\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    if line.expected == 0 and "--json" in line.argv:
        assert isinstance(json.loads(result.unmasked_stdout), dict)  # one object

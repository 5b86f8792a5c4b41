"""The process boundary: what a hostile command can reach of nhi-invoke, as the same user and
as another (docs/threat-model.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import run_nhi
from tests.e2e.users import NOBODY, folder_owned_by, give, require_root, unprivileged

pytestmark = pytest.mark.e2e
INSPECTOR = str(Path(__file__).with_name("child_inspector.py"))
# The inspector needs only the standard library: the system's Python, which every user can
# reach (a virtual environment's interpreter may link into root's home).
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
LEDGER_KEY = "the-ledger-key-of-this-job-0123456789"
SECRET_NAMES = ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "NHI_LEDGER_KEY")


def _inspect(prefix: tuple[str, ...], report: Path, target: str, *extra: str) -> list[str]:
    looks = [arg for name in SECRET_NAMES for arg in ("--look", name)]
    return [*prefix, PYTHON, INSPECTOR, str(report), target, *looks, *extra]


def _job(github_env: dict[str, str], folder: Path) -> dict[str, str]:
    """The job's variables, with its temporary folder and home where `folder`'s owner may write."""
    return github_env | {
        "RUNNER_TEMP": str(folder),
        "HOME": str(folder),
        "NHI_LEDGER_KEY": LEDGER_KEY,
    }


def test_a_same_user_command_cannot_read_nhi_invokes_environment_or_attach_to_it(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    uid, prefix = unprivileged()
    with folder_owned_by(uid) as folder:
        env = _job(github_env, folder)
        # The control: the same inspector, as the same user, reads a dumpable process that
        # holds the same variables, and attaches to it.
        control_report = folder / "control.json"
        bystander = subprocess.Popen(
            [*prefix, sys.executable, "-c", "import time; time.sleep(60)"], env=env
        )
        try:
            subprocess.run(
                _inspect(prefix, control_report, str(bystander.pid)), env=env, check=True
            )
        finally:
            bystander.kill()
            bystander.wait()
        control = json.loads(control_report.read_text())
        assert control["same_user"]
        assert control["environ"] == {"read": True, "found": list(SECRET_NAMES)}
        assert control["ptrace"] == "attached"

        report = folder / "report.json"
        result = run_nhi(
            [
                "run",
                "--step-id",
                "inspector",
                "--aws-role-arn",
                sandbox["target_role_arn"],
                "--",
                *_inspect((), report, "parent"),
            ],
            env,
            prefix=prefix,
        )
        assert result.code == 0, result.stderr
        seen = json.loads(report.read_text())
    assert seen["uid"] == uid
    assert seen["same_user"], "the command must run as nhi-invoke's own user"
    assert seen["environ"] == {"read": False, "error": "EACCES"}
    assert seen["ptrace"] == "EPERM"
    assert seen["own"] == []  # nor are they in its own environment
    # What the boundary does not stop: the same user may still signal (kill) nhi-invoke.
    assert seen["signal"] == "allowed"
    assert seen["dumpable"] == 1  # the command itself is an ordinary process


def test_a_command_run_as_another_user_reaches_neither_the_step_nor_its_files(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    """The documented recipe: nhi-invoke as the job's user, the command as another."""
    require_root("the command is switched to another user with setpriv")
    with folder_owned_by(os.getuid(), 0o755) as folder:
        env = _job(github_env, folder) | {"GITHUB_OUTPUT": str(folder / "output")}
        (folder / "output").write_text("")
        report = give(folder / "report", NOBODY, 0o700)
        ledger = folder / "nhi-invoke" / "ledger.jsonl"
        # The step's shell (dumpable, the job's user) runs nhi-invoke, as on GitHub.
        step = [
            "sh",
            "-c",
            '"$@"; exit $?',
            "step-shell",
            sys.executable,
            "-m",
            "nhi_invoke",
            "run",
            "--step-id",
            "other-user",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            # docs/threat-model.md, "Run the command as another user"
            *("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"),
            PYTHON,
            INSPECTOR,
        ]
        results = {}
        for target in ("parent", "grandparent"):
            out = report / f"{target}.json"
            done = subprocess.run(
                [
                    *step,
                    str(out),
                    target,
                    *[a for n in (*SECRET_NAMES, "AWS_SESSION_TOKEN") for a in ("--look", n)],
                    "--write",
                    str(ledger),
                    "--write",
                    str(folder / "output"),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            results[target] = json.loads(out.read_text())
    for target, seen in results.items():
        assert seen["uid"] == NOBODY, target
        assert not seen["same_user"], target
        assert seen["environ"] == {"read": False, "error": "EACCES"}, target
        assert seen["ptrace"] == "EPERM", target
        assert seen["signal"] == "EPERM", target  # nor kill nhi-invoke before its cleanup
        assert seen["writes"] == {str(ledger): "EACCES", str(folder / "output"): "EACCES"}
        assert seen["own"] == ["AWS_SESSION_TOKEN"]  # it still has its credentials

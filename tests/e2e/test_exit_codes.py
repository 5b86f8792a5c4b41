"""The child's exit code comes back unchanged; signals reach it exactly once."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import NHI, ledger_events, run_nhi

pytestmark = pytest.mark.e2e

# A child that records each SIGTERM/SIGINT it gets, waits a second for a duplicate, exits 0.
TRAPPING_CHILD = """
import signal, sys, time
count_file, ready_file = sys.argv[1:3]
got = []
def on_signal(signum, frame):
    got.append(signum)
    with open(count_file, "a") as f:
        f.write(f"{signum}\\n")
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, on_signal)
open(ready_file, "w").close()
end = time.monotonic() + 30
while time.monotonic() < end and not got:
    time.sleep(0.02)
time.sleep(1.0)
sys.exit(0)
"""


def _wait_for(path: Path, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_child_exit_code_is_returned_unchanged(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    result = run_nhi(
        [
            "run",
            "--step-id",
            "seven",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            "sh",
            "-c",
            "exit 7",
        ],
        github_env,
    )
    assert result.code == 7
    finished = ledger_events(github_env)[-1]
    assert finished["event"] == "invocation.finished"
    assert finished["exit_code"] == 7


def test_child_killed_by_sigkill_gives_137(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    result = run_nhi(
        [
            "run",
            "--step-id",
            "killed",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            "sh",
            "-c",
            "kill -KILL $$",
        ],
        github_env,
    )
    assert result.code == 137
    exited = next(e for e in ledger_events(github_env) if e["event"] == "command.exited")
    assert exited["signal"] == 9


def _start_trapping(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> tuple[subprocess.Popen[str], Path, Path]:
    count, ready = tmp_path / "count", tmp_path / "ready"
    proc = subprocess.Popen(
        [
            NHI,
            "run",
            "--step-id",
            "trap",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            sys.executable,
            "-c",
            TRAPPING_CHILD,
            str(count),
            str(ready),
        ],
        env=github_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(ready)
    return proc, count, ready


def test_sigterm_to_nhi_invoke_reaches_the_child_once_and_exits_143(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    proc, count, _ = _start_trapping(github_env, sandbox, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert count.read_text().split() == [str(int(signal.SIGTERM))]
    events = ledger_events(github_env)
    assert [e["event"] for e in events][-2:] == ["credential.expiring", "invocation.finished"]
    assert events[-1]["signal"] == signal.SIGTERM


def test_sigterm_to_the_whole_process_group_reaches_the_child_once(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    proc, count, _ = _start_trapping(github_env, sandbox, tmp_path)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert count.read_text().split() == [str(int(signal.SIGTERM))]


def test_ctrl_c_in_a_terminal_reaches_the_child_once(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    count, ready = tmp_path / "count", tmp_path / "ready"
    argv = [
        NHI,
        "run",
        "--step-id",
        "tty",
        "--aws-role-arn",
        sandbox["target_role_arn"],
        "--",
        sys.executable,
        "-c",
        TRAPPING_CHILD,
        str(count),
        str(ready),
    ]
    pid, master = pty.fork()
    if pid == 0:  # the child: a session leader whose controlling terminal is the pty
        os.execve(NHI, argv, github_env)  # noqa: S606 - the program under test
    drain = threading.Thread(target=_drain, args=(master,), daemon=True)
    drain.start()
    try:
        _wait_for(ready)
        os.write(master, b"\x03")  # the terminal turns ^C into SIGINT for its foreground group
    finally:
        _, status = os.waitpid(pid, 0)
    assert count.read_text().split() == [str(int(signal.SIGINT))]
    assert os.waitstatus_to_exitcode(status) == 0


def _drain(fd: int) -> None:
    """Read the terminal's output so the processes never block on a full pty."""
    with contextlib.suppress(OSError):
        while os.read(fd, 4096):
            pass

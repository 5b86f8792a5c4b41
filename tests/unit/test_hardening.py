"""Which commands make nhi-invoke non-dumpable (nhi_invoke/hardening.py, cli/app.py): each
is run in a process of its own, which then reports its own flag."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
REPORT = (
    "import ctypes, sys\n"
    "from nhi_invoke.cli.app import main\n"
    "main(sys.argv[1:])\n"
    "print('dumpable', ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"
)


def _dumpable_after(*args: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", REPORT, *args], capture_output=True, text=True, check=True
    )
    return int(done.stdout.split("dumpable ")[-1])


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--help"),
        ("sandbox", "--help"),
        ("revoke", "--help"),
        ("token", "--help"),
        ("audit", "verify", "--help"),
    ],
)
def test_commands_that_hold_secrets_make_the_process_non_dumpable(args: tuple[str, ...]) -> None:
    assert _dumpable_after(*args) == 0


@pytest.mark.parametrize("args", [("--version",), ("run", "--dry-run", "--help")])
def test_the_version_and_the_dry_run_leave_the_process_as_it_was(args: tuple[str, ...]) -> None:
    assert _dumpable_after(*args) == 1

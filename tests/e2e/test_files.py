"""Files: the ledger private whatever the umask, never written through a planted symlink."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import NHI, ledger_path, run_nhi

pytestmark = pytest.mark.e2e


def test_the_ledger_is_0600_in_a_0700_directory_even_with_umask_0(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    done = subprocess.run(
        [
            "sh",
            "-c",
            'umask 000; exec "$0" "$@"',
            NHI,
            "run",
            "--step-id",
            "umask",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            "true",
        ],
        env=github_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    path = ledger_path(github_env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_symlink_planted_at_the_ledger_path_is_refused(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = ledger_path(github_env)
    path.parent.mkdir(mode=0o700)
    path.symlink_to(victim)
    marker = tmp_path / "ran"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "link",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            "touch",
            str(marker),
        ],
        github_env,
    )
    assert result.code == 78
    assert "cannot open the ledger" in result.stderr
    assert victim.read_text() == "precious\n"
    assert not marker.exists()

"""Files: the ledger private whatever the umask, never written through a planted symlink, never
in a folder another user could swap."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.ledger import private
from tests.e2e.runs import NHI, ledger_path, run_nhi
from tests.e2e.users import NOBODY, folder_owned_by, is_root, require_root

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


def _run_with_ledger(
    env: dict[str, str], sandbox: dict[str, Any], ledger: Path, marker: Path, *shell: str
) -> subprocess.CompletedProcess[str]:
    """`nhi-invoke run --ledger LEDGER -- touch MARKER`, through `sh -c` (for a umask)."""
    args = [
        NHI,
        "run",
        "--step-id",
        "private",
        "--ledger",
        str(ledger),
        "--aws-role-arn",
        sandbox["target_role_arn"],
        "--",
        "touch",
        str(marker),
    ]
    script = " ".join([*shell, 'exec "$0" "$@"'])
    return subprocess.run(
        ["sh", "-c", script, *args], env=env, capture_output=True, text=True, check=False
    )


def _refused(done: subprocess.CompletedProcess[str], marker: Path, ledger: Path) -> str:
    """A refusal: exit 78, one line, the command never started, no ledger written."""
    assert done.returncode == 78, done.stderr
    (line,) = done.stderr.splitlines()
    assert not marker.exists()
    assert not ledger.exists()
    return line


def test_every_folder_level_nhi_invoke_creates_is_0700_even_with_umask_0(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    top = tmp_path / "ledgers"
    ledger = top / "team" / "job" / "ledger.jsonl"
    done = _run_with_ledger(github_env, sandbox, ledger, tmp_path / "ran", "umask 000;")
    assert done.returncode == 0, done.stderr
    for level in (top, top / "team", top / "team" / "job"):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600


def test_a_ledger_in_a_world_writable_folder_of_another_user_is_refused_before_minting(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    require_root("the folder must belong to another user")
    with folder_owned_by(NOBODY, 0o777) as shared:
        ledger = shared / "ledger.jsonl"
        marker = tmp_path / "ran"
        line = _refused(_run_with_ledger(github_env, sandbox, ledger, marker), marker, ledger)
        assert line == (
            f"nhi-invoke: error: the ledger's folder {shared} belongs to uid {NOBODY}, not to "
            f"this user (uid 0); fix: {private.FIX}"
        )
        # A folder of ours inside it is no better: the other user can move it away.
        mine = shared / "mine" / "ledger.jsonl"
        line = _refused(_run_with_ledger(github_env, sandbox, mine, marker), marker, mine)
        assert f"the folder {shared} above the ledger can be written by others" in line
        assert "(mode 0777)" in line


def test_a_world_writable_folder_above_the_ledger_is_refused_unless_sticky(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    ledger = shared / "nhi" / "ledger.jsonl"
    marker = tmp_path / "ran"
    line = _refused(_run_with_ledger(github_env, sandbox, ledger, marker), marker, ledger)
    assert "is not sticky (mode 0777): another user could replace the ledger's folder" in line
    shared.chmod(0o1777)  # as /tmp: others cannot move what is ours
    done = _run_with_ledger(github_env, sandbox, ledger, marker)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(ledger.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o1777, 0o722])
def test_an_existing_ledger_folder_others_can_write_is_refused_even_if_sticky(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path, mode: int
) -> None:
    folder = tmp_path / "ledger-folder"
    folder.mkdir()
    folder.chmod(mode)
    ledger = folder / "ledger.jsonl"
    marker = tmp_path / "ran"
    line = _refused(_run_with_ledger(github_env, sandbox, ledger, marker), marker, ledger)
    assert f"the ledger's folder {folder} can be written by others (mode {mode:04o})" in line
    assert f"fix: chmod 700 {folder}" in line


def test_an_existing_ledger_file_others_can_write_or_of_another_user_is_refused(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "ledger-folder"
    folder.mkdir(mode=0o700)
    ledger = folder / "ledger.jsonl"
    ledger.write_text("")
    ledger.chmod(0o662)
    marker = tmp_path / "ran"
    done = _run_with_ledger(github_env, sandbox, ledger, marker)
    assert done.returncode == 78
    assert f"the ledger {ledger} can be written by others (mode 0662)" in done.stderr
    assert ledger.read_text() == ""
    assert not marker.exists()
    if not is_root():
        return
    ledger.chmod(0o600)
    os.chown(ledger, NOBODY, NOBODY)
    done = _run_with_ledger(github_env, sandbox, ledger, marker)
    assert done.returncode == 78
    assert f"the ledger {ledger} belongs to uid {NOBODY}, not to this user" in done.stderr
    assert not marker.exists()


def test_a_ledger_path_that_is_a_folder_is_one_line_with_78_for_run_and_verify(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "not-a-ledger"
    folder.mkdir(mode=0o700)
    marker = tmp_path / "ran"
    done = _run_with_ledger(github_env, sandbox, folder, marker)
    assert done.returncode == 78
    assert len(done.stderr.splitlines()) == 1
    assert not marker.exists()
    verify = run_nhi(["audit", "verify", str(folder)], github_env)
    assert verify.code == 78
    (line,) = verify.stderr.splitlines()
    assert f"cannot read the ledger {folder}: Is a directory" in line

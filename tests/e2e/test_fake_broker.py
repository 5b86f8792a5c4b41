"""A broker from the tests folder, registered the way any plug-in is (NHI_BROKER_MODULES),
through a whole invocation of the installed nhi-invoke: its options in `run --help` and the
plan, its grant in the child's environment, released at exit, in the ledger, and recovered by
`nhi-invoke revoke` after nhi-invoke itself is killed. No file outside tests/ names it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import NHI, ledger_events, run_nhi
from tests.fake_broker.service import SecretsService

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHILD = str(Path(__file__).with_name("child_fake.py"))


@pytest.fixture
def service() -> Iterator[SecretsService]:
    with SecretsService() as running:
        yield running


@pytest.fixture
def plugin_env(github_env: dict[str, str]) -> dict[str, str]:
    """A GitHub job's environment that names the fake broker's module (and can import it)."""
    return github_env | {
        "NHI_BROKER_MODULES": "tests.fake_broker.declaration",
        "PYTHONPATH": str(ROOT),
    }


def _wait_for(path: Path) -> int:
    deadline = time.monotonic() + 30
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, "the child never got ready"
        time.sleep(0.05)
    return int(path.read_text())


def _plain(text: str) -> str:
    """Without the terminal styles rich adds on GitHub Actions."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_its_options_are_in_run_help_with_their_sources(plugin_env: dict[str, str]) -> None:
    result = run_nhi(["run", "--help"], plugin_env | {"COLUMNS": "200"})
    assert result.code == 0, result.stderr
    shown = _plain(result.stdout)
    assert "--fake-url" in shown
    assert "[env: NHI_FAKE_URL; config: fake-url]" in shown
    assert "[env: NHI_FAKE_LIFETIME; config: fake-lifetime; default: 300]" in shown
    assert "[env: NHI_FAKE_AUDIENCE; config: not allowed; default: fake-secrets]" in shown
    without = run_nhi(["run", "--help"], plugin_env | {"NHI_BROKER_MODULES": ""})
    assert "--fake-url" not in _plain(without.stdout)
    assert "--aws-role-arn" in _plain(without.stdout)


def test_its_plan_is_in_the_dry_run(plugin_env: dict[str, str], service: SecretsService) -> None:
    args = ["run", "--dry-run", "--fake-url", service.url, "--fake-lifetime", "120"]
    result = run_nhi([*args, "--json", "--", "true"], plugin_env)
    assert result.code == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    assert plan["fake"] == {"url": service.url, "audience": "fake-secrets", "lifetime": 120}
    assert plan["aws"] is None
    assert plan["clouds"] == ["fake"]
    assert "FAKE_SECRET_TOKEN" in plan["env_set"]
    assert "the fake broker is for tests only" in plan["warnings"]
    table = _plain(run_nhi([*args, "--", "true"], plugin_env | {"COLUMNS": "200"}).stdout)
    assert "Fake service" in table
    assert "revoked by its accessor when the command ends" in table
    assert service.state() == {}  # a dry run issues nothing


def test_its_grant_reaches_the_child_is_released_and_recorded(
    plugin_env: dict[str, str], service: SecretsService, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    env = plugin_env | {"FAKE_SECRET_TOKEN_FILE": "/somewhere/else"}
    result = run_nhi(
        ["run", "--step-id", "plug", "--fake-url", service.url, "--", sys.executable, CHILD,
         str(report)],
        env,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    seen = json.loads(report.read_text())
    assert seen["status"] == 200  # the child held a live token of its own
    assert seen["names"] == ["FAKE_SECRETS_URL", "FAKE_SECRET_TOKEN"]  # and no other
    ((accessor, state),) = service.state().items()
    assert seen["whoami"]["accessor"] == accessor
    assert state["live"] is False  # revoked the moment the command ended
    events = ledger_events(plugin_env)
    issued = next(e for e in events if e["event"] == "credential.issued")
    revoked = next(e for e in events if e["event"] == "credential.revoked")
    assert (issued["cloud"], issued["principal_id"]) == ("fake", accessor)
    assert issued["oidc"]["claims"]["aud"] == "fake-secrets"
    assert (revoked["revocation"], revoked["accessor"]) == ("revoke-accessor", accessor)
    assert seen["secrets"][0] in result.masked  # masked on GitHub before the child started


def test_after_nhi_invoke_is_killed_revoke_recovers_it(
    plugin_env: dict[str, str], service: SecretsService, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [NHI, "run", "--step-id", "crash", "--fake-url", service.url, "--", sys.executable,
         CHILD, str(tmp_path / "report.json"), str(ready)],
        env=plugin_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    child_pid = _wait_for(ready)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    os.killpg(child_pid, signal.SIGKILL)  # orphaned in its own group: end it too
    ((accessor, state),) = service.state().items()
    assert state["live"] is True  # nobody released it
    result = run_nhi(["revoke", "--json"], plugin_env)
    assert result.code == 0, result.stderr
    outcomes = json.loads(result.unmasked_stdout)["outcomes"]
    assert [(o["action"], o["detail"]) for o in outcomes] == [
        ("revoked", f"revoke-accessor: accessor={accessor}")
    ]
    assert service.state()[accessor]["live"] is False
    events = ledger_events(plugin_env)
    revoked = next(e for e in events if e["event"] == "credential.revoked")
    assert (revoked["cloud"], revoked["recovered"]) == ("fake", True)
    assert events[-1]["event"] == "invocation.finished"
    assert events[-1]["recovered"] is True

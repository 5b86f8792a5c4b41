"""docs/agents.md runs: every Python sample against the sandbox, configured as the page says
(roles and a token from the environment), and every shell line as written."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent_runtime import fetch_token, runtime_environ
from tests.e2e.runs import NHI, note_input, run_nhi

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "agents.md").read_text()
SAMPLES = re.findall(r"<!-- runs: ([^>]*) -->\n```python\n(.*?)```", PAGE, re.DOTALL)
SHELL_LINES = [
    line
    for block in re.findall(r"```shell\n(.*?)```", PAGE, re.DOTALL)
    for line in block.splitlines()
    if line.strip()
]


def _ledger(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(("how", "code"), SAMPLES, ids=[f"sample-{i}" for i in range(len(SAMPLES))])
def test_each_python_sample_runs_as_the_page_configures_it(
    how: str, code: str, sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(fetch_token(sandbox, "sts.amazonaws.com"))
    note_input(token_file)
    source = ("AGENT_TOKEN_PATH" if "token: callable" in how else "NHI_TOKEN_FILE", token_file)
    env = runtime_environ(base_env, sandbox, tmp_path) | {
        "NHI_AWS_ROLE_ARN": sandbox["target_role_arn"],
        "NHI_AWS_OIDC_ROLE_ARN": sandbox["entry_role_arn"],
        "NHI_AWS_REVOKE": "true",
        source[0]: str(source[1]),
    }
    (tmp_path / "sandbox.json").write_text(json.dumps(sandbox))  # its --ready-file
    if "aws_role_arn=ready" in code:  # that sample configures itself from the ready file
        own = ("NHI_AWS", "NHI_TOKEN", "AWS_ENDPOINT_URL")
        env = {k: v for k, v in env.items() if not k.startswith(own)}
    sample = tmp_path / "sample.py"
    sample.write_text(code)
    done = subprocess.run(
        [sys.executable, str(sample)], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ":assumed-role/nhi-sandbox-deploy/case-10" in done.stdout
    events = _ledger(Path(env["NHI_LEDGER"]))
    children = [e for e in events if e["event"] == "credential.issued" and e["purpose"] == "child"]
    revoked = [e for e in events if e["event"] == "credential.revoked"]
    assert children
    assert {e["fingerprint"] for e in revoked} == {e["fingerprint"] for e in children}


def test_the_pages_shell_lines_run_as_written(base_env: dict[str, str], tmp_path: Path) -> None:
    assert SHELL_LINES == [
        "nhi-invoke sandbox --ready-file sandbox.json",
        "python examples/agents/support_desk.py --sandbox sandbox.json",
        "nhi-invoke audit show --agent support-desk",
        "nhi-invoke audit show --task case-1043",
        "nhi-invoke run --task-id case-1042 --agent support-desk --on-behalf-of "
        "alice@example.com --token-command print-token --aws-role-arn "
        "arn:aws:iam::123456789012:role/support -- python handle_case.py",
    ]
    # "from a checkout of this repository"
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    serving = subprocess.Popen(
        [NHI, *shlex.split(SHELL_LINES[0])[1:]],
        env=base_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        ready = tmp_path / "sandbox.json"
        deadline = time.monotonic() + 60
        while not ready.exists() or not ready.stat().st_size:
            assert serving.poll() is None, "the sandbox exited"
            assert time.monotonic() < deadline, "the sandbox did not become ready"
            time.sleep(0.05)
        time.sleep(0.05)
        example = shlex.split(SHELL_LINES[1])
        done = subprocess.run(
            [sys.executable, *example[1:]], env=base_env, cwd=tmp_path, capture_output=True,
            text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "case-1043: revoked; case-1042 goes on with its own session" in done.stdout
        by_agent = run_nhi(shlex.split(SHELL_LINES[2])[1:], base_env, cwd=tmp_path)
        assert by_agent.code == 0, by_agent.stderr
        assert "case-1042" in by_agent.stdout
        assert "case-1043" in by_agent.stdout
        by_task = run_nhi(shlex.split(SHELL_LINES[3])[1:], base_env, cwd=tmp_path)
        assert by_task.code == 0, by_task.stderr
        assert "case-1043" in by_task.stdout
        assert "case-1042" not in by_task.stdout
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(timeout=20)
    # It would mint: shown as its plan, which needs no token and runs nothing.
    words = shlex.split(SHELL_LINES[4])
    planned = run_nhi([*words[1:2], "--dry-run", "--json", *words[2:]], base_env, cwd=tmp_path)
    assert planned.code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    plan = plan.get("plan", plan)
    assert plan["aws"]["session_name"] == f"case-1042.support-desk.{plan['invocation_id']}"
    assert plan["token_source"] == "token command print-token"


def test_the_readme_leads_to_the_page_by_its_title_and_the_page_holds_the_threat_model() -> None:
    readme = (ROOT / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if "](docs/agents.md)" in line]
    assert "Agents and long-lived processes" in row
    assert PAGE.startswith("# Agents and long-lived processes\n")
    headings = re.findall(r"^## (.+)$", PAGE, re.MULTILINE)
    assert {
        "The API",
        "Threat model: a task's code shares the process",
        "One process per task",
    } <= set(headings)
    assert "**Revocation bounds the damage; it does not isolate.**" in PAGE

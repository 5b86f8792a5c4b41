"""`examples/agents/support_desk.py` runs as a user would run it against the sandbox: two cases,
each with its own session and its own MCP tool server; one is revoked mid-flight, the other
completes with its session still working; `audit show` finds both by agent and by task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import deny_policies, run_nhi

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agents" / "support_desk.py"


def test_the_support_desk_example_revokes_one_case_mid_flight_while_the_other_completes(
    sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    ready = tmp_path / "sandbox.json"
    ready.write_text(json.dumps(sandbox))  # what `nhi-invoke sandbox --ready-file` writes
    ledger = tmp_path / "ledger.jsonl"
    env = base_env | {"NHI_LEDGER": str(ledger)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--sandbox", str(ready)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    acts = {
        line.split(":")[0]: line.split(" acts as ")[1].split()[0]
        for line in lines
        if " acts as " in line
    }
    assert acts["case-1042"] != acts["case-1043"]  # one identity per case
    assert "/case-1043.support-desk." in acts["case-1043"]
    revoked_at = lines.index("case-1043: revoked; case-1042 goes on with its own session")
    assert "case-1043: its model asked for export_customers: revoking it mid-flight" in lines
    assert not any(line.startswith("case-1043: export_customers") for line in lines)
    # After the other case was revoked, this one's tools still act as its own session.
    later = [line for line in lines[revoked_at:] if line.startswith("case-1042: order_status")]
    assert later == [
        f"case-1042: order_status -> order 78 shipped on 2026-11-30 (looked up as "
        f"{acts['case-1042']})"
    ]
    assert lines[-2] == "case-1042: done; its credentials are released"

    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    by_case: dict[str, dict[str, Any]] = {}
    for event in events:
        by_case.setdefault(event["step_id"], {}).setdefault(event["event"], event)
    assert by_case["case-1043"]["command.exited"]["ended_by"] == "cancelled"
    assert by_case["case-1042"]["command.exited"]["ended_by"] == "return"
    assert by_case["case-1043"]["invocation.started"]["task"] == {
        "id": "case-1043",
        "agent": "support-desk",
        "on_behalf_of": "mallory@example.com",
    }
    denied = deny_policies(sandbox)
    for case in ("case-1042", "case-1043"):
        revoked = by_case[case]["credential.revoked"]
        assert denied[revoked["policy_name"]] == revoked["principal_id"]
        assert revoked["principal"] == acts[case]

    shown = run_nhi(["audit", "show", str(ledger), "--agent", "support-desk", "--json"], env)
    assert shown.code == 0, shown.stderr
    rows = json.loads(shown.stdout)
    rows = rows["invocations"] if isinstance(rows, dict) else rows
    assert {(r["step_id"], r["ended_by"], r["ended"]) for r in rows} == {
        ("case-1042", "return", "revoked"),
        ("case-1043", "cancelled", "revoked"),
    }
    one = run_nhi(["audit", "show", str(ledger), "--task", "case-1043"], env)
    assert "case-1043" in one.stdout
    assert "case-1042" not in one.stdout
    assert "mallory@example.com" in one.stdout

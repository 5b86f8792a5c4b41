"""The CLI's side of agent tasks, through the installed nhi-invoke: `run --task-id` (with the
agent and the user) outside CI, tokens from `--token-command`, and `audit show`/`audit trace`
narrowed to a task."""

from __future__ import annotations

import json
import stat
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests import trace_logs
from tests.e2e.agent_runtime import runtime_environ
from tests.e2e.runs import CHILD, note_input, note_secrets, run_nhi

pytestmark = pytest.mark.e2e

# A token helper as an agent platform would have one: it asks the identity provider for a
# token for the audience nhi-invoke names, and prints it.
PRINT_TOKEN = """#!{python}
import json, os, sys, urllib.parse, urllib.request
audience = os.environ["NHI_TOKEN_AUDIENCE"]
url = os.environ["SANDBOX_TOKEN_URL"] + "&audience=" + urllib.parse.quote(audience, safe="")
bearer = os.environ["SANDBOX_BEARER"]
request = urllib.request.Request(url, headers={{"Authorization": "bearer " + bearer}})
with urllib.request.urlopen(request, timeout=10) as answer:
    token = json.load(answer)["value"]
with open(os.environ["SANDBOX_TOKENS_SEEN"], "a") as seen:  # for the test's secret sweep
    seen.write(token + "\\n")
print(token)
"""


def _helper(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "print-token"
    path.parent.mkdir()
    path.write_text(PRINT_TOKEN.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _environ(base_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """A workstation or agent host: no CI, the sandbox's clouds, a token helper on PATH."""
    helper = _helper(tmp_path)
    seen = tmp_path / "tokens-seen"
    note_input(seen)
    return runtime_environ(base_env, sandbox, tmp_path) | {
        "SANDBOX_TOKENS_SEEN": str(seen),
        "PATH": f"{helper.parent}:{base_env['PATH']}",
        "SANDBOX_TOKEN_URL": sandbox["token_request_url"],
        "SANDBOX_BEARER": sandbox["environ"]["ACTIONS_ID_TOKEN_REQUEST_TOKEN"],
    }


def _task_run(
    env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path, task: str, user: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    report = tmp_path / f"{task}-{len(list(tmp_path.glob('*.json')))}.json"
    result = run_nhi(
        [
            "run",
            "--task-id", task,
            "--agent", "support-bot",
            "--on-behalf-of", user,
            "--token-command", "print-token",
            "--aws-oidc-role-arn", sandbox["entry_role_arn"],
            "--aws-role-arn", sandbox["target_role_arn"],
            "--aws-revoke",
            "--",
            sys.executable, CHILD, str(report),
        ],
        env,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    note_secrets(*Path(env["SANDBOX_TOKENS_SEEN"]).read_text().split())
    ledger = Path(env["NHI_LEDGER"])
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    invocation = events[-1]["invocation_id"]
    return json.loads(report.read_text()), [e for e in events if e["invocation_id"] == invocation]


def test_run_task_id_names_the_session_after_the_task_and_agent_with_a_token_command(
    sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    env = _environ(base_env, sandbox, tmp_path)
    report, events = _task_run(env, sandbox, tmp_path, "case-7", "alice@example.com")
    started, issued = events[0], [e for e in events if e["event"] == "credential.issued"]
    invocation = started["invocation_id"]
    session = report["arn"].rsplit("/", 1)[1]
    assert session == f"case-7.support-bot.{invocation}"
    assert started["step_id"] == "case-7"
    assert started["step_source"] == "flag --task-id"
    assert started["token_source"] == "token command print-token"
    assert started["task"] == {
        "id": "case-7",
        "agent": "support-bot",
        "on_behalf_of": "alice@example.com",
    }
    child = next(e for e in issued if e["purpose"] == "child")
    assert child["tags"]["nhi:agent"] == "support-bot"
    assert child["tags"]["nhi:on-behalf-of"] == "alice@example.com"
    assert child["tags"]["nhi:step"] == "case-7"
    # The token helper was run for the token nhi-invoke needed, and it is not recorded.
    assert child["oidc"]["claims"]["aud"] == "sts.amazonaws.com"
    assert "revoked" in {e["event"].split(".")[-1] for e in events}


def test_the_dry_run_shows_the_task_and_the_token_command_without_running_it(
    sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    env = _environ(base_env, sandbox, tmp_path) | {"SANDBOX_TOKEN_URL": "http://127.0.0.1:9/"}
    result = run_nhi(
        [
            "run", "--dry-run", "--json",
            "--task-id", "case-7", "--agent", "support-bot",
            "--token-command", "print-token --verbose",
            "--aws-oidc-role-arn", sandbox["entry_role_arn"],
            "--aws-role-arn", sandbox["target_role_arn"],
            "--", "true",
        ],
        env,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    plan = plan.get("plan", plan)
    assert plan["task"] == {"id": "case-7", "agent": "support-bot"}
    assert plan["token_source"] == "token command print-token"
    assert plan["aws"]["session_name"] == f"case-7.support-bot.{plan['invocation_id']}"
    assert plan["aws"]["tags"]["nhi:agent"] == "support-bot"


def test_a_repository_config_may_not_choose_a_token_command(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "nhi-invoke.toml").write_text('[defaults]\ntoken-command = "curl evil"\n')
    result = run_nhi(
        ["run", "--dry-run", "--aws-role-arn", "arn:aws:iam::123456789012:role/x", "--", "true"],
        base_env,
        cwd=tmp_path,
    )
    assert result.code == 78
    assert "token-command may not be set in the config file" in result.stderr


def test_audit_show_and_trace_narrow_to_one_task(
    sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    env = _environ(base_env, sandbox, tmp_path)
    runs = [
        _task_run(env, sandbox, tmp_path, "case-7", "alice@example.com"),
        _task_run(env, sandbox, tmp_path, "case-7", "alice@example.com"),
        _task_run(env, sandbox, tmp_path, "case-8", "bob@example.com"),
    ]
    ledger = env["NHI_LEDGER"]
    shown = run_nhi(["audit", "show", ledger, "--task", "case-7", "--json"], env)
    assert shown.code == 0, shown.stderr
    rows = json.loads(shown.stdout)
    rows = rows["invocations"] if isinstance(rows, dict) else rows
    ids = [events[0]["invocation_id"] for _, events in runs]
    assert [r["invocation_id"] for r in rows] == ids[:2]
    assert rows[0]["task"] == {
        "id": "case-7",
        "agent": "support-bot",
        "on_behalf_of": "alice@example.com",
    }

    records = []
    for report, events in runs:
        child = next(
            e for e in events if e["event"] == "credential.issued" and e["purpose"] == "child"
        )
        # While the command ran (CloudTrail's whole seconds: a window shorter than a second
        # holds the second it began in), never after its end, which `audit trace` flags.
        moment = datetime.fromisoformat(child["time"])
        records.append(
            trace_logs.call(
                f"call-{events[0]['invocation_id']}",
                moment,
                key=child["access_key_id"],
                role_arn=sandbox["target_role_arn"],
                session=child["session_name"],
                source_identity=events[0]["invocation_id"],
                event_name="GetObject",
                event_source="s3.amazonaws.com",
            )
        )
        assert report["values"]["AWS_ACCESS_KEY_ID"] == child["access_key_id"]
    logs = tmp_path / "cloudtrail"
    trace_logs.write_delivery(logs, datetime.fromisoformat(runs[0][1][0]["time"]), records)
    traced = run_nhi(
        ["audit", "trace", ledger, "--cloudtrail", str(logs), "--task", "case-7", "--json"], env
    )
    assert traced.code == 0, traced.stderr
    found = json.loads(traced.stdout)
    assert [i["invocation_id"] for i in found["invocations"]] == ids[:2]
    assert found["invocations"][0]["task"]["agent"] == "support-bot"
    assert sorted(e["invocation_id"] for e in found["events"]) == sorted(ids[:2])
    table = run_nhi(["audit", "trace", ledger, "--cloudtrail", str(logs), "--task", "case-8"], env)
    assert table.code == 0, table.stderr
    assert "agent support-bot · for bob@example.com" in table.stdout
    missing = run_nhi(["audit", "trace", ledger, "--cloudtrail", str(logs), "--task", "x"], env)
    assert missing.code == 2
    assert "no invocation for task x in the ledgers" in missing.stderr

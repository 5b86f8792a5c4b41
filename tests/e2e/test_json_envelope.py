"""One JSON envelope: every command's `--json` prints one object whose first keys are the
command and nhi-invoke's version; `run --json` without `--dry-run` ends with the outcome."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke import __version__
from tests.e2e.runs import ledger_path, run_nhi

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "fixtures" / "trust_policies" / "gh-pinned-immutable.json"


def _envelope(text: str, command: str) -> dict[str, Any]:
    document = json.loads(text)
    assert isinstance(document, dict)
    assert list(document)[:2] == ["command", "version"]
    assert (document["command"], document["version"]) == (command, __version__)
    return document


def _aws(sandbox: dict[str, Any]) -> list[str]:
    return ["--aws-role-arn", sandbox["target_role_arn"]]


def test_every_commands_json_is_one_object_in_the_envelope(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    ran = run_nhi(["run", "--step-id", "env", *_aws(sandbox), "--", "true"], github_env)
    assert ran.code == 0, ran.stderr
    ledger = str(ledger_path(github_env))
    commands = {
        "run": ["run", "--dry-run", "--json", *_aws(sandbox), "--", "true"],
        "token": ["token", "--json"],
        "revoke": ["revoke", "--json"],
        "audit show": ["audit", "show", ledger, "--json"],
        "audit verify": ["audit", "verify", ledger, "--json"],
        "audit pipelines": ["audit", "pipelines", str(ROOT / "ci-examples"), "--json"],
        "audit trust-policy": ["audit", "trust-policy", str(POLICY), "--json"],
    }  # `audit trace --json`: tests/e2e/test_trace.py, with the logs it needs
    for command, args in commands.items():
        result = run_nhi(args, github_env)
        assert result.code == 0, (command, result.stderr)
        _envelope(result.unmasked_stdout, command)


def test_the_dry_run_plan_names_the_command_it_would_run_argv(base_env: dict[str, str]) -> None:
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--aws-role-arn",
            "arn:aws:iam::111122223333:role/x",
            "--",
            "echo",
            "hi",
        ],
        base_env,
    )
    plan = _envelope(result.stdout, "run")
    assert (plan["dry_run"], plan["argv"]) == (True, ["echo", "hi"])


def test_run_json_ends_with_the_outcome_after_the_commands_output(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    result = run_nhi(
        [
            "run",
            "--json",
            "--step-id",
            "outcome",
            "--aws-oidc-role-arn",
            sandbox["entry_role_arn"],
            *_aws(sandbox),
            "--",
            sys.executable,
            "-c",
            "print('deployed'); raise SystemExit(3)",
        ],
        github_env,
    )
    assert result.code == 3  # the command's own code, unchanged
    lines = result.unmasked_stdout.splitlines()
    assert lines[0] == "deployed"
    outcome = _envelope(lines[-1], "run")  # one line: `tail -n 1 | jq`
    assert outcome["dry_run"] is False
    assert (outcome["step_id"], outcome["exit_code"], outcome["error"]) == ("outcome", 3, None)
    credentials = {c["purpose"]: c for c in outcome["credentials"]}
    assert set(credentials) == {"entry", "child"}
    child = credentials["child"]
    assert child["principal"].endswith(outcome["invocation_id"])
    assert child["ended"] == "expiring"
    assert 800 < child["exposure_seconds"] <= 900  # exact, not rounded


def test_run_json_reports_a_refusal_with_its_code_and_what_was_issued(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    result = run_nhi(
        [
            "run",
            "--json",
            "--gcp-provider",
            sandbox["gcp_provider"],
            "--gcp-service-account",
            sandbox["gcp_denied_service_account"],
            "--",
            "true",
        ],
        github_env,
    )
    assert result.code == 77
    outcome = _envelope(result.unmasked_stdout.splitlines()[-1], "run")
    assert outcome["exit_code"] == 77
    assert "PERMISSION_DENIED" in outcome["error"]
    # The federated token was minted before the refusal: it is there, and how it ends.
    assert [(c["purpose"], c["ended"]) for c in outcome["credentials"]] == [("entry", "expiring")]

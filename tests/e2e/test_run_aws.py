"""`nhi-invoke run` on an emulated GitHub Actions job: the child holds its own identity."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import (
    assert_no_leak,
    child_command,
    ledger_events,
    ledger_path,
    run_nhi,
)

pytestmark = pytest.mark.e2e


def _run_child(
    github_env: dict[str, str],
    tmp_path: Path,
    *options: str,
    env_extra: dict[str, str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    report = tmp_path / "report.json"
    env = github_env | (env_extra or {})
    result = run_nhi(["run", *options, "--", *child_command(report)], env)
    assert result.code == 0, result.stderr
    return result, json.loads(report.read_text())


def test_single_hop_child_runs_as_target_role_named_after_the_step(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    result, report = _run_child(
        github_env,
        tmp_path,
        "--step-id",
        "deploy-web",
        "--aws-role-arn",
        sandbox["target_role_arn"],
    )
    role, session = report["arn"].split(":assumed-role/")[1].split("/")
    assert role == "nhi-sandbox-deploy"
    assert session.startswith("deploy-web.")
    assert sandbox["environ"]["GITHUB_RUN_ID"] in session
    events = ledger_events(github_env)
    issued = [e for e in events if e["event"] == "credential.issued"]
    assert [e["principal"] for e in issued] == [report["arn"]]
    assert_no_leak(result, result.secrets, ledger_path(github_env))


def test_chained_mode_lands_in_the_target_role_through_the_entry_role(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    result, report = _run_child(
        github_env,
        tmp_path,
        "--step-id",
        "deploy-web",
        "--aws-oidc-role-arn",
        sandbox["entry_role_arn"],
        "--aws-role-arn",
        sandbox["target_role_arn"],
        "--tag",
        "team=web",
    )
    assert ":assumed-role/nhi-sandbox-deploy/deploy-web." in report["arn"]
    issued = [e for e in ledger_events(github_env) if e["event"] == "credential.issued"]
    assert [e["purpose"] for e in issued] == ["entry", "child"]
    assert "assumed-role/nhi-sandbox-entry/" in issued[0]["principal"]
    child = issued[1]
    assert child["tags"]["nhi:step"] == "deploy-web"
    assert child["tags"]["team"] == "web"
    assert child["tags"]["ci:repository"] == sandbox["environ"]["GITHUB_REPOSITORY"]
    assert child["source_identity"] == report["values"]["NHI_INVOCATION_ID"]
    # Both sessions' secrets are masked, the entry's too, though the child never sees them.
    assert len(result.masked) >= 1 + 2 * 3
    assert_no_leak(result, result.secrets, ledger_path(github_env))


def test_child_environment_is_injected_and_inherited_identities_are_gone(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    inherited = {
        "AWS_PROFILE": "does-not-exist",
        "AWS_ACCESS_KEY_ID": "AKIAINHERITEDKEY0000",
        "AWS_SECRET_ACCESS_KEY": "inherited-secret",
        "AWS_SESSION_TOKEN": "inherited-token",
        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/other",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/tmp/other",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/creds",
        "NHI_LEDGER_KEY": "the-ledger-key-the-command-must-not-see",
    }
    result, report = _run_child(
        github_env,
        tmp_path,
        "--step-id",
        "env-check",
        "--aws-role-arn",
        sandbox["target_role_arn"],
        "--aws-region",
        "eu-west-1",
        env_extra=inherited,
    )
    names = set(report["names"])
    for injected in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_SDK_UA_APP_ID",
        "NHI_INVOCATION_ID",
        "NHI_STEP_ID",
        "NHI_INVOKE_ACTIVE",
    ):
        assert injected in names
    for gone in (
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "NHI_LEDGER_KEY",
    ):
        assert gone not in names
    values = report["values"]
    assert values["AWS_ACCESS_KEY_ID"] != inherited["AWS_ACCESS_KEY_ID"]
    assert "inherited-secret" not in report["secrets"]
    assert values["AWS_REGION"] == values["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert values["NHI_STEP_ID"] == "env-check"
    assert values["AWS_SDK_UA_APP_ID"] == f"nhi/{values['NHI_INVOCATION_ID']}"
    assert values["NHI_INVOKE_ACTIVE"] == values["NHI_INVOCATION_ID"]
    assert_no_leak(result, result.secrets | set(report["secrets"]), ledger_path(github_env))


def test_keep_oidc_env_leaves_the_token_request_variables_to_the_child(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    _, report = _run_child(
        github_env,
        tmp_path,
        "--aws-role-arn",
        sandbox["target_role_arn"],
        "--step-id",
        "keep",
        "--keep-oidc-env",
    )
    assert "ACTIONS_ID_TOKEN_REQUEST_TOKEN" in report["names"]


def test_every_secret_is_masked_before_the_child_runs_and_appears_nowhere_else(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    result, report = _run_child(
        github_env, tmp_path, "--step-id", "mask", "--aws-role-arn", sandbox["target_role_arn"]
    )
    mask_lines = [
        i for i, line in enumerate(result.stdout.splitlines()) if line.startswith("::add-mask::")
    ]
    child_line = next(
        i for i, line in enumerate(result.stdout.splitlines()) if line.startswith("child: identity")
    )
    assert mask_lines
    assert max(mask_lines) < child_line
    assert set(report["secrets"]) <= result.masked
    assert report["values"]["AWS_ACCESS_KEY_ID"] in result.masked
    # The OIDC token is masked too: exactly one JWT-shaped value among the masks.
    assert sum(1 for v in result.masked if v.count(".") == 2 and v.startswith("eyJ")) == 1
    assert_no_leak(result, result.secrets, ledger_path(github_env))


def test_ledger_records_one_invocation_chained_and_private(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    _, report = _run_child(
        github_env, tmp_path, "--step-id", "ledger", "--aws-role-arn", sandbox["target_role_arn"]
    )
    path = ledger_path(github_env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    events = ledger_events(github_env)
    assert [e["event"] for e in events] == [
        "invocation.started",
        "credential.issued",
        "command.exited",
        "credential.expiring",
        "invocation.finished",
    ]
    assert {e["invocation_id"] for e in events} == {report["values"]["NHI_INVOCATION_ID"]}
    assert events[0]["prev"] == "0" * 64
    issued = events[1]
    assert issued["fingerprint"].startswith("sha256:")
    assert issued["oidc"]["claims"]["aud"] == "sts.amazonaws.com"
    assert issued["oidc"]["claims"]["repository"] == sandbox["environ"]["GITHUB_REPOSITORY"]
    assert issued["oidc"]["fingerprint"].startswith("sha256:")
    assert 0 < events[3]["exposure_seconds"] <= 900
    assert events[4]["exit_code"] == 0

"""`run --dry-run`: the plan with no CI, no token and no network; no cloud SDK imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import imported_packages, run_nhi

pytestmark = pytest.mark.e2e
ROLE = "arn:aws:iam::123456789012:role/deploy"
ENTRY = "arn:aws:iam::123456789012:role/entry"


def test_dry_run_without_ci_or_token_prints_the_plan(base_env: dict[str, str], home: Path) -> None:
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--step-id",
            "deploy-web",
            "--aws-role-arn",
            ROLE,
            "--",
            "terraform",
            "apply",
        ],
        base_env,
    )
    assert result.code == 0, result.stderr
    for expected in (
        "dry run",
        "deploy-web",
        ROLE,
        "AssumeRoleWithWebIdentity",
        "AWS_SESSION_TOKEN",
        "terraform apply",
        "expire",
    ):
        assert expected in result.stdout
    assert not (home / ".local").exists()  # no ledger: nothing happened


def test_dry_run_json_describes_the_chained_plan(base_env: dict[str, str]) -> None:
    env = base_env | {"AWS_PROFILE": "dev", "NHI_AWS_DURATION": "1800"}
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--step-id",
            "deploy-web",
            "--aws-oidc-role-arn",
            ENTRY,
            "--aws-role-arn",
            ROLE,
            "--tag",
            "team=web",
            "--",
            "true",
        ],
        env,
    )
    assert result.code == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)
    aws = plan["aws"]
    assert aws["chained"] is True
    assert aws["duration_seconds"] == 1800
    assert aws["session_name"].startswith("deploy-web.")
    assert aws["tags"]["nhi:step"] == "deploy-web"
    assert aws["tags"]["team"] == "web"
    assert aws["source_identity"] == plan["invocation_id"]
    assert "AWS_PROFILE" in plan["env_removed"]
    assert plan["ci"] == {"provider": "local"}


def test_config_file_supplies_step_settings(base_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "nhi-invoke.toml").write_text(
        f'[defaults]\naws-region = "eu-west-1"\n\n[steps.deploy-web]\naws-role-arn = "{ROLE}"\n'
        "aws-duration = 1200\n"
    )
    result = run_nhi(
        ["run", "--dry-run", "--json", "--step-id", "deploy-web", "--", "true"],
        base_env,
        cwd=tmp_path,
    )
    assert result.code == 0, result.stderr
    aws = json.loads(result.stdout)["aws"]
    assert (aws["role_arn"], aws["region"], aws["duration_seconds"]) == (ROLE, "eu-west-1", 1200)


@pytest.mark.parametrize(
    ("argv", "forbidden"),
    [
        (["--version"], ("botocore", "boto3", "google", "typer", "rich")),
        (
            ["run", "--dry-run", "--json", "--aws-role-arn", ROLE, "--", "true"],
            ("botocore", "boto3", "google", "jwt", "cryptography"),
        ),
    ],
    ids=["version", "dry-run"],
)
def test_fast_paths_import_no_cloud_sdk(
    argv: list[str], forbidden: tuple[str, ...], base_env: dict[str, str]
) -> None:
    assert not imported_packages(argv, base_env) & set(forbidden)


def test_single_hop_run_imports_neither_botocore_nor_google_auth(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    imported = imported_packages(
        [
            "run",
            "--quiet",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--step-id",
            "lean",
            "--",
            "true",
        ],
        github_env,
    )
    assert not imported & {"botocore", "boto3", "google"}


def test_dry_run_states_how_each_credential_ends(base_env: dict[str, str]) -> None:
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--step-id",
            "d",
            "--aws-oidc-role-arn",
            ENTRY,
            "--aws-role-arn",
            ROLE,
            "--aws-revoke",
            "--",
            "true",
        ],
        base_env,
    )
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    endings = {e["credential"].split(" (")[0]: e["ends"] for e in plan["endings"]}
    assert endings["AWS entry session"].startswith("expires 15m after issue")
    assert endings["AWS command session"].startswith("revoked as soon as the command ends")
    assert plan["aws"]["revocation"] == "deny-policy"


def test_dry_run_warns_when_credentials_outlive_what_is_needed(base_env: dict[str, str]) -> None:
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--aws-role-arn",
            ROLE,
            "--aws-duration",
            "3600",
            "--",
            "true",
        ],
        base_env,
    )
    warnings = json.loads(result.stdout)["warnings"]
    assert any("stays usable up to 1h after it is issued" in w for w in warnings)

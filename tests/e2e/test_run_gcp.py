"""`nhi-invoke run` with GCP (and with both clouds) against the GCP emulator."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import (
    assert_no_leak,
    imported_packages,
    ledger_events,
    ledger_path,
    run_nhi,
)

pytestmark = pytest.mark.e2e
CHILD = str(Path(__file__).with_name("child_gcp.py"))


def _get(url: str) -> Any:
    with urllib.request.urlopen(url) as answer:
        return json.load(answer)


def _gcp(sandbox: dict[str, Any], account: str | None = None) -> list[str]:
    return [
        "--gcp-provider",
        sandbox["gcp_provider"],
        "--gcp-service-account",
        account or sandbox["gcp_service_account"],
    ]


def _aws(sandbox: dict[str, Any]) -> list[str]:
    return ["--aws-role-arn", sandbox["target_role_arn"]]


def test_gcp_child_holds_the_service_account_for_no_longer_than_asked(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "gcp-deploy",
            *_gcp(sandbox),
            "--gcp-lifetime",
            "300",
            "--gcp-project",
            "nhi-sandbox",
            "--",
            sys.executable,
            CHILD,
            str(report_path),
        ],
        github_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["tokeninfo"]["email"] == sandbox["gcp_service_account"]
    assert 0 < report["tokeninfo"]["expires_in"] <= 300
    assert report["same_token"] is True
    assert {"GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"} <= set(report["names"])
    assert "AWS_SESSION_TOKEN" not in report["names"]
    issued = [e for e in ledger_events(github_env) if e["event"] == "credential.issued"]
    assert [(e["cloud"], e["purpose"]) for e in issued] == [("gcp", "entry"), ("gcp", "child")]
    assert issued[1]["principal"] == sandbox["gcp_service_account"]
    assert issued[1]["federated_principal"].endswith(
        "/subject/repo:nhi-sandbox/demo:ref:refs/heads/main"
    )
    assert issued[1]["fingerprint"].startswith("sha256:")
    assert set(report["secrets"]) <= result.masked
    assert_no_leak(result, result.secrets | set(report["secrets"]), ledger_path(github_env))


def test_google_auth_sends_what_real_google_expects(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    result = run_nhi(
        [
            "run",
            "--step-id",
            "wire",
            *_gcp(sandbox),
            "--gcp-lifetime",
            "420",
            "--gcp-scope",
            "https://www.googleapis.com/auth/devstorage.read_only",
            "--",
            "true",
        ],
        github_env,
    )
    assert result.code == 0, result.stderr
    invocation = ledger_events(github_env)[0]["invocation_id"]
    reason = f"nhi-invoke invocation {invocation}"
    calls = [
        r for r in _get(f"{sandbox['gcp_endpoint']}/__sandbox/requests") if r["reason"] == reason
    ]
    assert [c["path"] for c in calls] == [
        "/v1/token",
        f"/v1/projects/-/serviceAccounts/{sandbox['gcp_service_account']}:generateAccessToken",
    ]
    exchange, generate = calls
    assert exchange["content_type"] == "application/x-www-form-urlencoded"
    assert exchange["fields"]["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert exchange["fields"]["audience"] == f"//iam.googleapis.com/{sandbox['gcp_provider']}"
    assert exchange["fields"]["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert exchange["fields"]["requested_token_type"] == (
        "urn:ietf:params:oauth:token-type:access_token"
    )
    assert exchange["fields"]["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert generate["authorized"] is True
    assert generate["fields"]["scope"] == ["https://www.googleapis.com/auth/devstorage.read_only"]
    assert generate["fields"]["lifetime"] == "420s"


def test_both_clouds_in_one_run_each_from_its_own_audience(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    audiences_url = f"{sandbox['oidc_issuer']}/__sandbox/audiences"
    before = len(_get(audiences_url)["audiences"])
    report_path = tmp_path / "report.json"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "both",
            *_aws(sandbox),
            *_gcp(sandbox),
            "--",
            sys.executable,
            CHILD,
            str(report_path),
        ],
        github_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert ":assumed-role/nhi-sandbox-deploy/both." in report["aws_arn"]
    assert report["tokeninfo"]["email"] == sandbox["gcp_service_account"]
    asked = _get(audiences_url)["audiences"][before:]
    assert sorted(asked) == sorted(
        ["sts.amazonaws.com", f"https://iam.googleapis.com/{sandbox['gcp_provider']}"]
    )
    issued = [e for e in ledger_events(github_env) if e["event"] == "credential.issued"]
    assert {e["cloud"]: e["oidc"]["claims"]["aud"] for e in issued if e["purpose"] == "child"} == {
        "aws": "sts.amazonaws.com",
        "gcp": f"https://iam.googleapis.com/{sandbox['gcp_provider']}",
    }
    assert_no_leak(result, result.secrets | set(report["secrets"]), ledger_path(github_env))


def test_gcp_refused_after_aws_minted_exits_77_and_records_the_aws_credential(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "half",
            *_aws(sandbox),
            *_gcp(sandbox, sandbox["gcp_denied_service_account"]),
            "--",
            "touch",
            str(marker),
        ],
        github_env,
    )
    assert result.code == 77
    assert len(result.stderr.splitlines()) == 1
    assert "PERMISSION_DENIED: Permission 'iam.serviceAccounts.getAccessToken' denied" in (
        result.stderr
    )
    assert "roles/iam.workloadIdentityUser" in result.stderr
    # One readable line: what Google said and the token's claims, no Python tuple or escapes.
    assert "('" not in result.stderr
    assert '\\"' not in result.stderr
    assert f"repository='{sandbox['environ']['GITHUB_REPOSITORY']}'" in result.stderr
    assert "sub='repo:" in result.stderr
    assert not marker.exists()
    events = ledger_events(github_env)
    aws_issued = [e for e in events if e["event"] == "credential.issued" and e["cloud"] == "aws"]
    aws_ending = [e for e in events if e["event"] == "credential.expiring" and e["cloud"] == "aws"]
    assert len(aws_issued) == len(aws_ending) == 1
    assert aws_ending[0]["access_key_id"] == aws_issued[0]["access_key_id"]
    assert [e["event"] for e in events][-1] == "invocation.finished"
    assert events[-1]["exit_code"] == 77
    assert_no_leak(result, result.secrets, ledger_path(github_env))


def test_a_gcp_only_run_imports_neither_boto3_nor_botocore(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    imported = imported_packages(
        ["run", "--quiet", "--step-id", "lean", *_gcp(sandbox), "--", "true"], github_env
    )
    assert "google" in imported
    assert not imported & {"boto3", "botocore"}


def test_dry_run_shows_the_gcp_plan(base_env: dict[str, str]) -> None:
    provider = "projects/123/locations/global/workloadIdentityPools/ci-pool/providers/github"
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--step-id",
            "d",
            "--gcp-provider",
            provider,
            "--gcp-service-account",
            "deployer@proj.iam.gserviceaccount.com",
            "--",
            "true",
        ],
        base_env,
    )
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    gcp = plan["gcp"]
    assert gcp["audience"] == f"https://iam.googleapis.com/{provider}"
    assert gcp["sts_audience"] == f"//iam.googleapis.com/{provider}"
    assert gcp["lifetime_seconds"] == 600
    assert gcp["scopes"] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert "CLOUDSDK_AUTH_ACCESS_TOKEN" in plan["env_set"]
    assert plan["aws"] is None
    table = run_nhi(
        ["run", "--dry-run", "--step-id", "d", "--gcp-provider", provider, "--", "true"], base_env
    )
    assert "cannot be revoked" in table.stdout
    assert "federated token itself is handed over" in table.stdout


def test_a_refusal_at_gcp_sts_reads_as_one_line_with_the_claims(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    other = sandbox["gcp_provider"].rsplit("/", 1)[0] + "/gitlab"  # not the sandbox's provider
    result = run_nhi(["run", "--gcp-provider", other, "--", "true"], github_env)
    assert result.code == 77
    (line,) = result.stderr.splitlines()
    assert f"GCP STS refused the token for {other}: HTTP 400 invalid_target: " in line
    assert "('" not in line
    assert '\\"' not in line
    assert f"aud='https://iam.googleapis.com/{other}'" in line
    assert_no_leak(result, result.secrets, ledger_path(github_env))

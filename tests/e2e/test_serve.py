"""`--serve`: credentials refreshed while the command runs, and only for as long as it runs."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import assert_no_leak, ledger_events, ledger_path, run_nhi
from tests.fault_proxy import FaultProxy

pytestmark = pytest.mark.e2e
CHILD = str(Path(__file__).with_name("child_served.py"))


def _refused_or_gone(uri: str) -> bool:
    try:
        urllib.request.urlopen(uri, timeout=2)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return True  # nothing listening
    return False


def test_boto3_with_only_the_endpoint_gets_fresh_credentials_across_refreshes(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    # A 898 s margin on a 900 s session: every request after the first seconds re-issues.
    result = run_nhi(
        [
            "run",
            "--step-id",
            "long-deploy",
            "--serve",
            "--refresh-margin",
            "898",
            "--aws-oidc-role-arn",
            sandbox["entry_role_arn"],
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--aws-revoke",
            "--",
            sys.executable,
            CHILD,
            "aws",
            str(report_path),
            "3",
            "2.5",
        ],
        github_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert "AWS_SECRET_ACCESS_KEY" not in report["names"]
    assert "AWS_SESSION_TOKEN" not in report["names"]
    calls = report["calls"]
    assert all(":assumed-role/nhi-sandbox-deploy/long-deploy." in c["arn"] for c in calls)
    assert len({c["key"] for c in calls}) == 3  # a fresh access key id after each refresh
    assert (report["without_token"], report["wrong_token"], report["wrong_path"]) == (401, 401, 404)
    events = ledger_events(github_env)
    issued = [e for e in events if e["event"] == "credential.issued" and e["purpose"] == "child"]
    # Re-issued ahead in the background: every key the command saw was issued and recorded
    # (and some were issued that no request needed before the next).
    assert {c["key"] for c in calls} <= {e["access_key_id"] for e in issued}
    revoked = [e for e in events if e["event"] == "credential.revoked"]
    assert len(revoked) == len(issued)  # every session still valid is denied at the end
    assert _refused_or_gone(report["uri"])  # after the command: nothing listening
    assert_no_leak(result, result.secrets, ledger_path(github_env))


def test_google_auth_default_through_the_metadata_endpoint_across_a_refresh(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "long-gcp",
            "--serve",
            "--gcp-lifetime",
            "60",
            "--refresh-margin",
            "58",
            "--gcp-provider",
            sandbox["gcp_provider"],
            "--gcp-service-account",
            sandbox["gcp_service_account"],
            "--gcp-project",
            "nhi-sandbox",
            "--",
            sys.executable,
            CHILD,
            "gcp",
            str(report_path),
            "2",
            "2.5",
        ],
        github_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["project"] == "nhi-sandbox"
    assert report["without_flavor"] == 403
    assert [c["email"] for c in report["calls"]] == [sandbox["gcp_service_account"]] * 2
    assert report["calls"][0]["token_fp"] != report["calls"][1]["token_fp"]
    assert "CLOUDSDK_AUTH_ACCESS_TOKEN" not in report["names"]
    issued = [
        e
        for e in ledger_events(github_env)
        if e["event"] == "credential.issued" and e["purpose"] == "child"
    ]
    assert len(issued) >= 2


def test_the_endpoints_stop_when_the_command_exits_even_if_it_left_a_process_behind(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    uri_file, pid_file = tmp_path / "uri", tmp_path / "pid"
    script = (
        f'sleep 60 >/dev/null 2>&1 </dev/null & echo $! > "{pid_file}"; '
        f'echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI" > "{uri_file}"; exit 0'
    )
    result = run_nhi(
        [
            "run",
            "--step-id",
            "fork",
            "--serve",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            "sh",
            "-c",
            script,
        ],
        github_env,
    )
    try:
        assert result.code == 0, result.stderr
        uri = uri_file.read_text().strip()
        uri_file.unlink()  # the endpoint's address is masked as a secret: the leak sweep looks
        assert uri.startswith("http://127.0.0.1:")
        time.sleep(0.2)
        assert _refused_or_gone(uri)
    finally:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_the_plan_suggests_serve_for_a_command_that_outlives_its_credentials(
    base_env: dict[str, str],
) -> None:
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--expect-duration",
            "3600",
            "--aws-role-arn",
            "arn:aws:iam::123456789012:role/x",
            "--",
            "true",
        ],
        base_env,
    )
    assert any("add --serve" in w for w in json.loads(result.stdout)["warnings"])
    served = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--serve",
            "--aws-role-arn",
            "arn:aws:iam::123456789012:role/x",
            "--",
            "true",
        ],
        base_env,
    )
    plan = json.loads(served.stdout)
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" in plan["env_set"]
    assert "AWS_SECRET_ACCESS_KEY" not in plan["env_set"]


def test_a_slow_sts_never_delays_the_javascript_sdks_container_metadata_requests(
    proxied_env: dict[str, str],
    sandbox: dict[str, Any],
    proxies: dict[str, FaultProxy],
    node_sdk_command: list[str],
) -> None:
    # fromContainerMetadata() waits one second for an answer, with no retry. STS takes 1.5 s
    # here: a re-issue inside the client's request would time it out. Re-issued ahead in the
    # background, every request is answered with the current credential at once.
    proxies["aws"].delay(1.5, "AssumeRoleWithWebIdentity")
    result = run_nhi(
        [
            "run",
            "--step-id",
            "slow-sts",
            "--serve",
            "--refresh-margin",
            "897",  # of a 900 s session: a re-issue three seconds after each issue
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--",
            *node_sdk_command,
            "container-metadata",
            "200",  # at most
            "0.25",
            "fresh",  # every call asks the endpoint
            "3",  # until three keys were seen: across two re-issues
        ],
        proxied_env,
        timeout=120,
    )
    assert result.code == 0, result.stdout + result.stderr
    calls = [json.loads(line) for line in result.stdout.splitlines() if '"client"' in line]
    assert all("error" not in call for call in calls), calls[-1]
    assert all(":assumed-role/nhi-sandbox-deploy/slow-sts." in c["arn"] for c in calls)
    keys = [c["access_key_id"] for c in calls]
    assert len(set(keys)) == 3
    issued = [
        e["access_key_id"]
        for e in ledger_events(proxied_env)
        if e["event"] == "credential.issued" and e["purpose"] == "child"
    ]
    assert set(keys) <= set(issued)
    # The re-issues really were slow, and overlapped the command's requests.
    assert len(proxies["aws"].delayed) >= 3
    assert all(answered - received >= 1.5 for received, answered in proxies["aws"].delayed)
    assert "Traceback" not in result.stderr
    assert "Error" not in result.stderr

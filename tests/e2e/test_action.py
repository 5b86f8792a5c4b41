"""The composite action, its steps run as the runner runs them, against the sandbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.oidc import fingerprint
from nhi_invoke.sandbox.entra_directory import SANDBOX_CLIENT_ID, SANDBOX_TENANT_ID
from tests.azure_fixtures import AZURE_CHILD
from tests.e2e.action_harness import run_action
from tests.e2e.runs import CHILD

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parent.parent.parent
WHEELHOUSE = ROOT / ".wheelhouse"
VAULT = "https://vault.azure.net/.default"


@pytest.fixture(scope="module")
def job_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RUNNER_TEMP for these tests, as for the steps of one job: the action installs
    nhi-invoke there once and later steps reuse it, and they share the job's ledger."""
    return tmp_path_factory.mktemp("job")


@pytest.fixture
def runner_env(github_env: dict[str, str], job_temp: Path, tmp_path: Path) -> dict[str, str]:
    """A GitHub job's variables, with pip pointed at the local wheelhouse (no network)."""
    if not any(WHEELHOUSE.glob("nhi_invoke-*.whl")):
        pytest.fail(
            f"no wheelhouse at {WHEELHOUSE}: build it with "
            "'pip wheel -q -w .wheelhouse . setuptools' (the README's test command does)"
        )
    for name in ("env", "step_summary"):
        (tmp_path / name).write_text("")
    return github_env | {
        "RUNNER_TEMP": str(job_temp),
        "GITHUB_ENV": str(tmp_path / "env"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
    }


def test_the_action_runs_the_script_under_the_steps_own_identity(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    script = f'"{sys.executable}" "{CHILD}" "{report}"\necho "script done: $NHI_STEP_ID"'
    run = run_action(
        ROOT,
        {
            "run": script,
            "step-id": "deploy-web",
            "aws-oidc-role-arn": sandbox["entry_role_arn"],
            "aws-role-arn": sandbox["target_role_arn"],
            "aws-revoke": "true",
            "session-tags": "team=web\ncost-center=42\n",
        },
        runner_env,
        tmp_path,
    )
    assert run.exit_code == 0, run.log
    identity = json.loads(report.read_text())
    assert ":assumed-role/nhi-sandbox-deploy/deploy-web." in identity["arn"]
    assert "script done: deploy-web" in run.log
    assert run.outputs["aws-principal-arn"] == identity["arn"]
    assert run.outputs["invocation-id"] == identity["values"]["NHI_INVOCATION_ID"]
    assert run.outputs["ledger-path"].endswith("nhi-invoke/ledger.jsonl")
    assert run.outputs["gcp-service-account"] == ""
    ledger = [
        json.loads(line) for line in Path(run.outputs["ledger-path"]).read_text().splitlines()
    ]
    issued = next(
        e for e in ledger if e["event"] == "credential.issued" and e["purpose"] == "child"
    )
    assert issued["tags"]["team"] == "web"
    assert issued["tags"]["cost-center"] == "42"
    masked = {
        line.removeprefix("::add-mask::")
        for line in run.log.splitlines()
        if line.startswith("::add-mask::")
    }
    secrets = set(identity["secrets"])
    assert secrets <= masked
    unmasked_log = "\n".join(
        line for line in run.log.splitlines() if not line.startswith("::add-mask::")
    )
    written = "".join(
        Path(runner_env[k]).read_text() for k in ("GITHUB_ENV", "GITHUB_STEP_SUMMARY")
    )
    outputs = json.dumps(run.step_outputs)
    for secret in secrets | {m for m in masked if m.startswith("eyJ")}:
        assert secret not in unmasked_log
        assert secret not in written
        assert secret not in outputs
    assert Path(runner_env["GITHUB_ENV"]).read_text() == ""


def test_the_action_both_clouds_outputs(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    run = run_action(
        ROOT,
        {
            "run": 'test -n "$CLOUDSDK_AUTH_ACCESS_TOKEN" && test -n "$AWS_SESSION_TOKEN"',
            "step-id": "both",
            "aws-role-arn": sandbox["target_role_arn"],
            "gcp-provider": sandbox["gcp_provider"],
            "gcp-service-account": sandbox["gcp_service_account"],
            "gcp-scopes": "https://www.googleapis.com/auth/cloud-platform\n",
        },
        runner_env,
        tmp_path,
    )
    assert run.exit_code == 0, run.log
    assert run.outputs["gcp-service-account"] == sandbox["gcp_service_account"]
    assert ":assumed-role/nhi-sandbox-deploy/both." in run.outputs["aws-principal-arn"]


def test_the_action_fails_clearly_without_id_token_permission(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    env = {k: v for k, v in runner_env.items() if not k.startswith("ACTIONS_ID_TOKEN")}
    run = run_action(
        ROOT, {"run": "true", "aws-role-arn": sandbox["target_role_arn"]}, env, tmp_path
    )
    assert run.exit_code == 78
    assert "::error title=nhi-invoke::" in run.log
    assert "id-token: write" in run.log


def test_a_failing_script_keeps_its_exit_code_and_still_writes_outputs(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    run = run_action(
        ROOT, {"run": "exit 4", "aws-role-arn": sandbox["target_role_arn"]}, runner_env, tmp_path
    )
    assert run.exit_code == 4
    assert run.step_outputs["run"]["invocation-id"]
    assert "no step-id input" in run.log


# The Azure inputs (issue 19), against the sandbox's Entra emulator, which federates the
# sandbox issuer's GitHub subject.
def test_the_action_gives_the_script_an_azure_identity_for_the_scopes_it_lists(
    runner_env: dict[str, str],
    sandbox: dict[str, Any],
    tmp_path: Path,
) -> None:
    whoami = f"{sandbox['azure_authority_host']}/__sandbox/whoami?audience=https://vault.azure.net"
    env = runner_env | {"REQUESTS_CA_BUNDLE": sandbox["azure_ca_file"]}  # the script's whoami
    run = run_action(
        ROOT,
        {
            "run": f'"{sys.executable}" "{AZURE_CHILD}" managed {VAULT} --whoami "{whoami}"\n'
            f'"{sys.executable}" "{AZURE_CHILD}" managed https://graph.microsoft.com/.default',
            "step-id": "deploy-azure",
            "azure-client-id": SANDBOX_CLIENT_ID,
            "azure-tenant-id": sandbox["azure_tenant_id"],
            "azure-scopes": "https://management.azure.com/.default\n" + VAULT + "\n",
        },
        env,
        tmp_path,
    )
    assert run.exit_code == 0, run.log
    allowed, refused = [json.loads(line) for line in run.log.splitlines() if line.startswith("{")]
    assert allowed["whoami"]["claims"]["appid"] == SANDBOX_CLIENT_ID
    assert allowed["whoami"]["claims"]["tid"] == SANDBOX_TENANT_ID
    assert not refused["ok"]
    assert "may not get tokens for 'https://graph.microsoft.com'" in refused["error"]
    ledger = [
        json.loads(line) for line in Path(run.outputs["ledger-path"]).read_text().splitlines()
    ]
    issued = [e for e in ledger if e["event"] == "credential.issued" and e["cloud"] == "azure"]
    assert [e["resource"] for e in issued] == [
        "https://management.azure.com",
        "https://vault.azure.net",
    ]
    assert run.outputs["invocation-id"] == issued[0]["invocation_id"]
    masked = {
        fingerprint(line.removeprefix("::add-mask::"))
        for line in run.log.splitlines()
        if line.startswith("::add-mask::")
    }
    assert {e["fingerprint"] for e in issued} <= masked
    assert Path(runner_env["GITHUB_ENV"]).read_text() == ""

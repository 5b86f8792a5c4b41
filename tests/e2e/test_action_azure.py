"""The composite action's Azure inputs, its steps run as the runner runs them, against the
sandbox's Entra emulator (which trusts the sandbox issuer's GitHub subject)."""

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
from tests.e2e.test_action import ROOT, job_temp, runner_env  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e
VAULT = "https://vault.azure.net/.default"


def test_the_action_gives_the_script_an_azure_identity_for_the_scopes_it_lists(
    runner_env: dict[str, str],  # noqa: F811 - the fixture imported above
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

"""The Azure CLI as the step's command: `az login --identity` through nhi-invoke's
managed-identity endpoint, with the private AZURE_CONFIG_DIR nhi-invoke makes for the command
and removes after it. Needs the Azure CLI (.ci/run installs it in .venv-azure-cli)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nhi_invoke.sandbox.azure import EntraEmulator
from nhi_invoke.sandbox.entra_directory import SANDBOX_CLIENT_ID, SANDBOX_TENANT_ID
from tests.azure_fixtures import closed_port_url
from tests.clients.fixtures import require_client
from tests.e2e.runs import ledger_events, run_nhi

pytestmark = pytest.mark.e2e

AZ = Path(__file__).resolve().parents[2] / ".venv-azure-cli" / "bin" / "az"
CHILD = str(Path(__file__).with_name("child_az_login.sh"))


@pytest.fixture(scope="session")
def az() -> Path:
    require_client(AZ.exists(), "the Azure CLI", "bash .ci/run installs it in .venv-azure-cli")
    return AZ


def test_az_login_identity_works_unchanged_in_a_private_config_folder(
    az: Path, github_env: dict[str, str], entra: EntraEmulator
) -> None:
    env = github_env | {
        "AZURE_AUTHORITY_HOST": entra.url,
        "NHI_AZURE_CA_BUNDLE": entra.ca_file,
        "REQUESTS_CA_BUNDLE": entra.ca_file,  # the CLI's own trust, for the emulator's ARM
        "AZ": str(az),
        # Nothing leaves the machine: no telemetry, and any other request meets a closed port.
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "HTTPS_PROXY": closed_port_url(),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    result = run_nhi(
        [
            "run",
            "--step-id",
            "az",
            "--azure-client-id",
            SANDBOX_CLIENT_ID,
            "--azure-tenant-id",
            SANDBOX_TENANT_ID,
            "--",
            "bash",
            CHILD,
        ],
        env,
        timeout=180,
    )
    assert result.code == 0, result.stderr
    lines = result.unmasked_stdout.splitlines()
    profile = json.loads(next(line for line in lines if line.startswith("{")))
    assert profile == {
        "user": "userAssignedIdentity",
        "type": "servicePrincipal",
        "tenant": SANDBOX_TENANT_ID,
    }
    fingerprint = next(line for line in lines if line.startswith("token ")).split(":", 1)[1]
    config_dir = next(line for line in lines if line.startswith("config dir: ")).split(": ", 1)[1]
    issued = [e for e in ledger_events(env) if e["event"] == "credential.issued"]
    # The CLI asks for Resource Manager by its own name, which the default scope allows.
    by_resource = {e["resource"]: e for e in issued}
    cli_token = by_resource["https://management.core.windows.net/"]
    assert cli_token["fingerprint"] == "sha256:" + fingerprint
    assert not Path(config_dir).exists()  # what az wrote went with the command

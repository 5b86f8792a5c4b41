"""Azure everywhere else: `--dry-run`, the options' errors, what the child may not inherit, and
`nhi-invoke sandbox --cloud azure` (or all clouds at once)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from nhi_invoke.sandbox.azure import EntraEmulator
from nhi_invoke.sandbox.entra_directory import SANDBOX_CLIENT_ID, SANDBOX_TENANT_ID
from tests.azure_fixtures import AZURE_CHILD
from tests.e2e.runs import imported_packages, run_nhi

pytestmark = pytest.mark.e2e

AZURE = ["--azure-client-id", SANDBOX_CLIENT_ID, "--azure-tenant-id", SANDBOX_TENANT_ID]
PROBE = str(Path(__file__).with_name("child_azure_endpoint.py"))
CLOUDS_CHILD = str(Path(__file__).with_name("child_clouds.py"))
REQUEST_ID_NAMESPACE = uuid.UUID("6f3b0c52-8d1e-5a47-9c2b-7e4f1d0a3b96")
# What a job may have lying around: another identity's secrets, files and protocols.
INHERITED = {
    "AZURE_CLIENT_SECRET": "inherited-secret",
    "AZURE_CLIENT_CERTIFICATE_PATH": "/etc/ci/cert.pem",
    "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
    "AZURE_USERNAME": "ci@example.com",
    "AZURE_PASSWORD": "hunter2",
    "IDENTITY_SERVER_THUMBPRINT": "00" * 20,
    "MSI_ENDPOINT": "http://127.0.0.1:1/msi",
    "MSI_SECRET": "msi-secret",
    "IMDS_ENDPOINT": "http://169.254.169.254",
    "ARM_CLIENT_SECRET": "terraform-secret",
    "ARM_OIDC_REQUEST_TOKEN": "terraform-oidc",
    "AZURE_STORAGE_KEY": "c3RvcmFnZS1rZXk=",
    "AZURE_CONFIG_DIR": "/home/runner/.azure",
    "AZURE_TOKEN_CREDENTIALS": "dev",
    "IDENTITY_ENDPOINT": "http://127.0.0.1:2/other",
    "IDENTITY_HEADER": "other-header",
}


def test_the_dry_run_shows_the_exchange_the_endpoint_and_the_names(
    base_env: dict[str, str],
) -> None:
    result = run_nhi(
        ["run", "--dry-run", "--json", "--step-id", "deploy", *AZURE, "--", "true"],
        base_env | INHERITED,
    )
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    azure = plan["azure"]
    assert azure["token_url"] == (
        f"https://login.microsoftonline.com/{SANDBOX_TENANT_ID}/oauth2/v2.0/token"
    )
    assert azure["scopes"] == ["https://management.azure.com/.default"]
    assert azure["audience"] == "api://AzureADTokenExchange"
    assert azure["client_request_id"] == str(
        uuid.uuid5(REQUEST_ID_NAMESPACE, plan["invocation_id"])
    )
    assert plan["clouds"] == ["azure"]
    assert {"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CONFIG_DIR", "AZURE_CLIENT_ID"} <= set(
        plan["env_set"]
    )
    assert set(INHERITED) - set(plan["env_set"]) <= set(plan["env_removed"])
    assert "cannot be revoked" in plan["endings"][0]["ends"]


def test_a_dry_run_imports_no_azure_sdk(base_env: dict[str, str]) -> None:
    args = ["run", "--dry-run", *AZURE, "--", "true"]
    assert "azure" not in imported_packages(args, base_env)
    assert "msal" not in imported_packages(args, base_env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--azure-client-id", "deployer", "--azure-tenant-id", SANDBOX_TENANT_ID],
            "--azure-client-id 'deployer' is not a client id; fix: pass the Application (client)",
        ),
        (["--azure-client-id", SANDBOX_CLIENT_ID], "no --azure-tenant-id"),
        (
            [*AZURE, "--azure-scope", "https://management.azure.com"],
            "is not a <resource>/.default scope",
        ),
        (
            [*AZURE, "--azure-cloud", "AzureStack"],
            "--azure-cloud 'AzureStack' is not an Azure cloud",
        ),
    ],
)
def test_invalid_azure_options_stop_before_anything_is_asked(
    base_env: dict[str, str], args: list[str], message: str
) -> None:
    result = run_nhi(["run", "--dry-run", *args, "--", "true"], base_env)
    assert result.code == 78
    (line,) = result.stderr.strip().splitlines()
    assert message in line


def test_an_http_authority_is_refused(base_env: dict[str, str]) -> None:
    result = run_nhi(
        ["run", "--dry-run", *AZURE, "--", "true"],
        base_env | {"AZURE_AUTHORITY_HOST": "http://login.example"},
    )
    assert result.code == 78
    assert "AZURE_AUTHORITY_HOST='http://login.example' is not an https URL" in result.stderr


def test_the_command_inherits_no_other_azure_identity(
    github_env: dict[str, str], entra: EntraEmulator, tmp_path: Path
) -> None:
    env = (
        github_env
        | INHERITED
        | {
            "AZURE_AUTHORITY_HOST": entra.url,
            "NHI_AZURE_CA_BUNDLE": entra.ca_file,
        }
    )
    report_path = tmp_path / "probe.json"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "deploy",
            *AZURE,
            "--",
            sys.executable,
            PROBE,
            "probe",
            str(report_path),
        ],
        env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    replaced = {
        "AZURE_CONFIG_DIR",
        "AZURE_TOKEN_CREDENTIALS",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
    }
    assert not (set(INHERITED) - replaced) & set(report["names"])
    assert report["config_dir"] != INHERITED["AZURE_CONFIG_DIR"]
    assert report["values"]["AZURE_TOKEN_CREDENTIALS"] == "prod"
    assert report["endpoint"] != INHERITED["IDENTITY_ENDPOINT"]
    assert report["allowed"]["status"] == 200


def test_the_sandbox_gives_a_command_an_azure_identity(
    tmp_path: Path, base_env: dict[str, str]
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    result = run_nhi(
        [
            "sandbox",
            "--cloud",
            "azure",
            "--ledger",
            str(ledger),
            "--",
            "sh",
            "-c",
            'REQUESTS_CA_BUNDLE="$NHI_AZURE_CA_BUNDLE" exec "$0" "$@"',
            sys.executable,
            AZURE_CHILD,
            "default",
            "https://management.azure.com/.default",
        ],
        base_env,
    )
    assert result.code == 0, result.stderr
    (report,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert report["ok"], report
    assert report["claims"]["appid"] == SANDBOX_CLIENT_ID
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    (issued,) = [e for e in events if e["event"] == "credential.issued"]
    assert (issued["cloud"], issued["token_id"]) == ("azure", report["claims"]["uti"])


@pytest.mark.parametrize("cloud", ["all", "aws,gcp,azure"])
def test_the_sandbox_gives_one_command_every_cloud_it_names(
    tmp_path: Path, base_env: dict[str, str], cloud: str
) -> None:
    ledger, report_path = tmp_path / "ledger.jsonl", tmp_path / "clouds.json"
    result = run_nhi(
        [
            "sandbox",
            "--cloud",
            cloud,
            "--ledger",
            str(ledger),
            "--",
            sys.executable,
            CLOUDS_CHILD,
            str(report_path),
        ],
        base_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert ":assumed-role/" in report["aws"]
    assert report["gcp"].endswith(".iam.gserviceaccount.com")
    assert report["azure"]["appid"] == SANDBOX_CLIENT_ID
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    issued = {
        e["cloud"] for e in events if e["event"] == "credential.issued" and e["purpose"] == "child"
    }
    # "all" is every broker, the sandbox's OpenBao included.
    assert issued == ({"aws", "gcp", "azure"} if "," in cloud else {"aws", "gcp", "azure", "vault"})
    assert {e["invocation_id"] for e in events} == {report["invocation"]}


def _documented_commands() -> list[list[str]]:
    """Every `nhi-invoke …` command in docs/azure.md's sh blocks, continuation lines joined."""
    import shlex  # noqa: PLC0415

    page = (Path(__file__).parents[2] / "docs" / "azure.md").read_text()
    commands = []
    for block in page.split("```sh\n")[1:]:
        text = block.split("```", 1)[0].replace("\\\n", " ")
        commands += [
            shlex.split(line) for line in text.splitlines() if line.startswith("nhi-invoke ")
        ]
    return commands


def test_the_documented_command_lines_run(base_env: dict[str, str]) -> None:
    commands = _documented_commands()
    assert [c[1] for c in commands] == ["run", "sandbox"]
    for command in commands:
        args = command[1:]
        if args[0] == "run":  # it would mint: as the plan, with no CI and no token
            args = ["run", "--dry-run", *args[1:]]
        result = run_nhi(args, base_env)
        assert result.code == 0, (command, result.stderr)
    assert int(result.stdout.strip().splitlines()[-1]) > 0  # the sandbox's token's expiry

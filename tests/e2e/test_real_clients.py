"""The clients people run in a step, as the step's command under `nhi-invoke run` (static
mode: credentials in the command's environment), on a runner whose HOME already holds
long-lived credentials (`~/.aws/credentials`, a gcloud account, an ADC file).

Each client must end up with the step's identity: the ledger's `credential.issued` principal,
access key id or token fingerprint. The first tests are the control: without nhi-invoke, the
same clients in the same HOME pick the planted credentials, so the planting is real.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clients.fixtures import BOTO3_CLIENT, GCLOUD_CLIENT, client_report, run_client
from tests.clients.planted_home import PLANTED_TOKEN_URI, PlantedHome
from tests.e2e.conftest import ledger_events, run_nhi

pytestmark = pytest.mark.e2e
AWS_CLIENTS = ("boto3", "aws-cli", "js-default", "js-node-provider-chain")


def _aws_command(client: str, request: pytest.FixtureRequest) -> list[str]:
    if client == "boto3":
        return [sys.executable, str(BOTO3_CLIENT)]
    if client == "aws-cli":
        command: list[str] = request.getfixturevalue("aws_cli_command")
        return command
    node: list[str] = request.getfixturevalue("node_sdk_command")
    return [*node, client.removeprefix("js-")]


def _child_grant(env: dict[str, str], cloud: str) -> dict[str, Any]:
    (grant,) = [
        e
        for e in ledger_events(env)
        if e["event"] == "credential.issued" and e["purpose"] == "child" and e["cloud"] == cloud
    ]
    return grant


@pytest.mark.parametrize("client", AWS_CLIENTS)
def test_without_nhi_invoke_each_aws_client_uses_the_planted_long_lived_key(
    client: str,
    request: pytest.FixtureRequest,
    github_env: dict[str, str],
    planted_home: PlantedHome,
) -> None:
    runner = github_env | {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    done = run_client(_aws_command(client, request), runner)
    assert done.returncode == 0, done.stdout + done.stderr
    assert client_report(done.stdout)["arn"] == planted_home.aws_user_arn


def test_without_nhi_invoke_gcloud_uses_the_planted_account(
    github_env: dict[str, str], sandbox: dict[str, Any], planted_home: PlantedHome, gcloud: Path
) -> None:
    command = [sys.executable, str(GCLOUD_CLIENT), str(gcloud), sandbox["gcp_endpoint"]]
    done = run_client(command, github_env)
    assert done.returncode == 1
    report = client_report(done.stdout)
    assert report["config"]["account"] == planted_home.gcloud_account
    # It tried to refresh the planted service-account key at the planted token endpoint.
    assert PLANTED_TOKEN_URI.split("/")[2] in report["error"]


@pytest.mark.parametrize("client", AWS_CLIENTS)
def test_each_aws_client_gets_the_steps_identity_over_a_planted_home(
    client: str,
    request: pytest.FixtureRequest,
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    planted_home: PlantedHome,
) -> None:
    step = f"real-{client}"
    command = _aws_command(client, request)
    result = run_nhi(
        ["run", "--step-id", step, "--aws-role-arn", sandbox["target_role_arn"], "--", *command],
        github_env,
    )
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    grant = _child_grant(github_env, "aws")
    assert grant["session_name"].startswith(f"{step}.")
    assert report["arn"] == grant["principal"]
    if client == "aws-cli":  # the CLI shows only the key's last four characters
        assert report["access_key_suffix"] == grant["access_key_id"][-4:]
    else:
        assert report["access_key_id"] == grant["access_key_id"]
    if "source" in report:  # botocore and the CLI say where they found the credentials
        assert report["source"] == "env"
    assert planted_home.aws_access_key_id != grant["access_key_id"]


@pytest.mark.parametrize("client", [*AWS_CLIENTS, "js-container-metadata"])
def test_each_aws_client_gets_the_served_identity_in_a_clean_home(
    client: str, request: pytest.FixtureRequest, github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    # --serve: the credentials only behind the container-credentials endpoint.
    command = _aws_command(client, request)
    result = run_nhi(
        ["run", "--serve", "--aws-role-arn", sandbox["target_role_arn"], "--", *command],
        github_env,
    )
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    grant = _child_grant(github_env, "aws")
    assert report["arn"] == grant["principal"]
    if client == "aws-cli":
        assert report["access_key_suffix"] == grant["access_key_id"][-4:]
    else:
        assert report["access_key_id"] == grant["access_key_id"]
    if "source" in report:
        assert report["source"] == "container-role"


def test_gcloud_prints_the_steps_token_over_a_planted_account(
    github_env: dict[str, str], sandbox: dict[str, Any], planted_home: PlantedHome, gcloud: Path
) -> None:
    # gcloud copies every command's output, a printed token included, into the log folder of
    # the config it uses (here the runner's ~/.config/gcloud): static mode leaves gcloud the
    # runner's config today (issue 14), so this runner has turned file logging off.
    runner = github_env | {"CLOUDSDK_CORE_DISABLE_FILE_LOGGING": "true"}
    result = run_nhi(
        [
            "run",
            "--step-id",
            "real-gcloud",
            "--gcp-provider",
            sandbox["gcp_provider"],
            "--gcp-service-account",
            sandbox["gcp_service_account"],
            "--gcp-project",
            "nhi-sandbox",
            "--",
            sys.executable,
            str(GCLOUD_CLIENT),
            str(gcloud),
            sandbox["gcp_endpoint"],
        ],
        runner,
    )
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    grant = _child_grant(runner, "gcp")
    assert report["token_fingerprint"] == grant["fingerprint"]
    assert report["email"] == grant["principal"] == sandbox["gcp_service_account"]
    assert report["config"]["project"] == "nhi-sandbox"  # CLOUDSDK_CORE_PROJECT wins
    # gcloud cached nothing: the token is in no file of the runner's gcloud folder (the
    # secret-leak sweep reads every file the run wrote, this folder's included).
    assert not (planted_home.gcloud_config / "access_tokens.db").exists()


def test_gcloud_copies_a_printed_token_into_its_log_folder_unless_file_logging_is_off(
    base_env: dict[str, str], planted_home: PlantedHome, gcloud: Path
) -> None:
    # Why the static test's runner turns file logging off (no nhi-invoke here: gcloud alone).
    token = "ya29.a-token-for-the-log-test"
    command = [str(gcloud), "auth", "print-access-token"]
    env = base_env | {"CLOUDSDK_AUTH_ACCESS_TOKEN": token}
    logs = planted_home.gcloud_config / "logs"

    def logged() -> bool:
        return any(token in p.read_text() for p in logs.rglob("*.log"))

    quiet = run_client(command, env | {"CLOUDSDK_CORE_DISABLE_FILE_LOGGING": "true"})
    assert quiet.stdout.strip() == token
    assert not logged()
    loud = run_client(command, env)
    assert loud.stdout.strip() == token
    assert logged()

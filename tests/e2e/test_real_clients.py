"""The clients people run in a step, as the step's command under `nhi-invoke run` (static
mode: credentials in the command's environment; `--serve`: behind loopback endpoints), on a
runner whose HOME already holds long-lived credentials (`~/.aws/credentials`, a gcloud
account, an ADC file).

Each client must end up with the step's identity: the ledger's `credential.issued` principal,
access key id or token fingerprint. The first tests are the control: without nhi-invoke, the
same clients in the same HOME pick the planted credentials, so the planting is real.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clients.fixtures import (
    BOTO3_CLIENT,
    CLIENTS,
    GCLOUD_CLIENT,
    GOOGLE_AUTH_CLIENT,
    client_report,
    run_client,
)
from tests.clients.planted_home import PLANTED_TOKEN_URI, PlantedHome
from tests.e2e.conftest import ledger_events, run_nhi

pytestmark = pytest.mark.e2e
SERVE_SECRETS = CLIENTS / "serve_secrets.py"
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
    before = _files(planted_home.gcloud_config)
    result = run_nhi(
        [
            "run",
            "--step-id",
            "real-gcloud",
            *_gcp_options(sandbox),
            "--gcp-project",
            "nhi-sandbox",
            "--",
            sys.executable,
            str(GCLOUD_CLIENT),
            str(gcloud),
            sandbox["gcp_endpoint"],
        ],
        github_env,
    )
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    grant = _child_grant(github_env, "gcp")
    assert report["token_fingerprint"] == grant["fingerprint"]
    assert report["email"] == grant["principal"] == sandbox["gcp_service_account"]
    assert report["helper"]["token_fingerprint"] == grant["fingerprint"]
    # gcloud ran in the invocation's own configuration folder: not the runner's account.
    assert report["config"].get("account") is None
    assert report["config"]["project"] == "nhi-sandbox"  # CLOUDSDK_CORE_PROJECT
    # gcloud logged the printed token, and cached nothing, in that folder, now removed: the
    # runner's folder is as it was (the secret-leak sweep reads every file the run wrote).
    _assert_nothing_left(planted_home, github_env, before)


def test_gcloud_copies_a_printed_token_into_its_log_folder_unless_file_logging_is_off(
    base_env: dict[str, str], planted_home: PlantedHome, gcloud: Path
) -> None:
    # Why nhi-invoke gives gcloud a configuration folder of the invocation's own, removed when
    # it ends (no nhi-invoke here: gcloud alone, in the runner's folder).
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


def _gcp_options(sandbox: dict[str, Any]) -> list[str]:
    return [
        "--gcp-provider",
        sandbox["gcp_provider"],
        "--gcp-service-account",
        sandbox["gcp_service_account"],
    ]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _assert_nothing_left(
    planted_home: PlantedHome, env: dict[str, str], gcloud_before: dict[str, bytes]
) -> None:
    """After the step: the runner's gcloud and AWS folders are as they were (no cached token,
    no log), and the invocation's private folder is gone."""
    assert _files(planted_home.gcloud_config) == gcloud_before
    assert not (planted_home.gcloud_config / "access_tokens.db").exists()
    assert sorted(_files(planted_home.home / ".aws")) == ["credentials"]
    assert not list(Path(env["RUNNER_TEMP"]).glob("nhi-invoke-*"))


SERVED_AWS_CLIENTS = (*AWS_CLIENTS, "js-container-metadata")


def _served(folder: Path, command: list[str]) -> list[str]:
    """`command`, after its endpoint's secrets are reported to the secret-leak sweep."""
    return [sys.executable, str(SERVE_SECRETS), str(folder / "serve-secrets.json"), *command]


@pytest.mark.parametrize("client", SERVED_AWS_CLIENTS)
def test_each_aws_client_gets_the_served_identity_over_a_planted_home(
    client: str,
    request: pytest.FixtureRequest,
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    planted_home: PlantedHome,
    tmp_path: Path,
) -> None:
    # ~/.aws/credentials comes before the container endpoint in every SDK's chain: --serve
    # points the shared files at empty private ones, so the endpoint wins.
    gcloud_before = _files(planted_home.gcloud_config)
    runner = github_env | {"AWS_PROFILE": "default"}
    command = _served(tmp_path, _aws_command(client, request))
    result = run_nhi(
        ["run", "--serve", "--aws-role-arn", sandbox["target_role_arn"], "--", *command], runner
    )
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    grant = _child_grant(runner, "aws")
    assert report["arn"] == grant["principal"] != planted_home.aws_user_arn
    if client == "aws-cli":
        assert report["access_key_suffix"] == grant["access_key_id"][-4:]
    else:
        assert report["access_key_id"] == grant["access_key_id"]
    if "source" in report:
        assert report["source"] == "container-role"
    _assert_nothing_left(planted_home, runner, gcloud_before)


def test_google_auth_default_gets_the_served_identity_over_a_planted_adc_file(
    github_env: dict[str, str], sandbox: dict[str, Any], planted_home: PlantedHome, tmp_path: Path
) -> None:
    gcloud_before = _files(planted_home.gcloud_config)
    # The ADC file both where gcloud keeps it and named by GOOGLE_APPLICATION_CREDENTIALS.
    runner = github_env | {"GOOGLE_APPLICATION_CREDENTIALS": str(planted_home.adc_file)}
    result = run_nhi(
        [
            "run",
            "--serve",
            *_gcp_options(sandbox),
            "--",
            *_served(tmp_path, [sys.executable, str(GOOGLE_AUTH_CLIENT), sandbox["gcp_endpoint"]]),
        ],
        runner,
    )
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    grant = _child_grant(runner, "gcp")
    assert report["credentials"] == "google.auth.compute_engine.credentials.Credentials"
    assert report["token_fingerprint"] == grant["fingerprint"]
    assert report["token_fingerprint"] != planted_home.adc_token_fingerprint
    assert report["email"] == sandbox["gcp_service_account"]
    # No --gcp-project: the metadata server names the service account's project.
    assert report["project"] == sandbox["gcp_service_account"].split("@")[1].split(".")[0]
    _assert_nothing_left(planted_home, runner, gcloud_before)


def test_gcloud_under_serve_needs_no_project_and_caches_nothing_that_outlives_the_step(
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    planted_home: PlantedHome,
    gcloud: Path,
    tmp_path: Path,
) -> None:
    gcloud_before = _files(planted_home.gcloud_config)
    command = [sys.executable, str(GCLOUD_CLIENT), str(gcloud), sandbox["gcp_endpoint"]]
    result = run_nhi(
        ["run", "--serve", *_gcp_options(sandbox), "--", *_served(tmp_path, command)],
        github_env,
    )
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    grant = _child_grant(github_env, "gcp")
    project = sandbox["gcp_service_account"].split("@")[1].split(".")[0]
    # auth print-access-token, config list and config config-helper all succeed, as the step.
    assert report["token_fingerprint"] == grant["fingerprint"]
    assert report["email"] == sandbox["gcp_service_account"]
    assert "config_error" not in report
    assert report["config"].get("account") != planted_home.gcloud_account
    assert report["config"]["project"] == project
    assert report["helper"] == {"token_fingerprint": grant["fingerprint"], "project": project}
    _assert_nothing_left(planted_home, github_env, gcloud_before)


def test_static_mode_gives_google_auth_nothing_not_the_runners_adc_file(
    github_env: dict[str, str], sandbox: dict[str, Any], planted_home: PlantedHome
) -> None:
    # google-auth reads no token variable: static mode cannot give it the step's identity,
    # and must not leave it the runner's (the ADC file) or a GCE VM's (NO_GCE_CHECK).
    result = run_nhi(
        ["run", *_gcp_options(sandbox), "--", sys.executable, str(GOOGLE_AUTH_CLIENT)],
        github_env,
    )
    assert result.code == 1
    report = client_report(result.stdout)
    assert report["error"].startswith("DefaultCredentialsError")
    assert "credentials" not in report


def test_static_mode_keeps_the_runners_aws_settings_but_never_its_credentials(
    github_env: dict[str, str], sandbox: dict[str, Any], planted_home: PlantedHome
) -> None:
    config = planted_home.home / ".aws" / "config"
    config.write_text(
        "[default]\nretry_mode = adaptive\ncli_pager =\ncredential_process = /bin/false\n"
        "[profile runner]\nrole_arn = arn:aws:iam::123456789012:role/runner\n"
        "source_profile = default\n"
    )
    with (planted_home.home / ".aws" / "credentials").open("a") as credentials:
        credentials.write(
            f"[runner]\naws_access_key_id = {planted_home.aws_access_key_id}\n"
            "aws_secret_access_key = x\n"
        )
    script = (
        "import json, boto3, botocore.session, botocore.exceptions\n"
        "scoped = botocore.session.Session().get_scoped_config()\n"
        "try:\n"
        "    boto3.Session(profile_name='runner')\n"
        "    named = 'found'\n"
        "except botocore.exceptions.ProfileNotFound:\n"
        "    named = 'not found'\n"
        "print(json.dumps({'client': 'botocore', 'config': sorted(scoped), 'runner': named}))\n"
    )
    result = run_nhi(
        ["run", "--aws-role-arn", sandbox["target_role_arn"], "--", sys.executable, "-c", script],
        github_env,
    )
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    assert report["config"] == ["cli_pager", "retry_mode"]  # no credential_process
    assert report["runner"] == "not found"  # a command naming the runner's profile gets nothing

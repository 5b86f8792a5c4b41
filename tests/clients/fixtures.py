"""Fixtures for the real clients (installed by .ci/run) and a runner home with planted
long-lived credentials. Imported by tests/e2e/conftest.py.

A client that is not installed skips its tests with the command that installs it; on CI
(`CI` set) it fails them instead, so a missing install cannot pass as a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clients.planted_home import LongLivedAwsUser, PlantedHome, plant

__all__ = [
    "aws_cli",
    "aws_cli_command",
    "gcloud",
    "long_lived_aws_user",
    "node_sdk_command",
    "planted_home",
    "planted_private_key_pem",
]

CLIENTS = Path(__file__).resolve().parent
REPO = CLIENTS.parents[1]
AWS_CLI = REPO / ".venv-clients" / "bin" / "aws"
NODE_CLIENT = CLIENTS / "node" / "caller_identity.mjs"
BOTO3_CLIENT = CLIENTS / "boto3_identity.py"
AWS_CLI_CLIENT = CLIENTS / "aws_cli_identity.py"
GCLOUD_CLIENT = CLIENTS / "gcloud_identity.py"
GOOGLE_AUTH_CLIENT = CLIENTS / "google_auth_identity.py"


def require_client(found: bool, what: str, install: str) -> None:
    """Skip the test when a client is missing, or fail it on CI (`CI` set)."""
    if found:
        return
    message = f"{what} is not installed ({install})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run every real-client test")
    pytest.skip(message)


def run_client(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A client script as a process of its own, in exactly `env` (nothing inherited)."""
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def client_report(stdout: str) -> dict[str, Any]:
    """The last identity line a client script printed (stdout may hold other lines)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and '"client"' in line:
            report: dict[str, Any] = json.loads(line)
            return report
    raise AssertionError(f"no client report in {stdout!r}")


@pytest.fixture(scope="session")
def aws_cli() -> Path:
    """The AWS CLI (v1, from PyPI) in .venv-clients, with its own botocore."""
    require_client(AWS_CLI.exists(), "the AWS CLI", "bash .ci/run installs it in .venv-clients")
    return AWS_CLI


@pytest.fixture(scope="session")
def aws_cli_command(aws_cli: Path) -> list[str]:
    """A step's command: the AWS CLI's caller identity and credential source, as JSON."""
    return [sys.executable, str(AWS_CLI_CLIENT), str(aws_cli)]


@pytest.fixture(scope="session")
def node_sdk_command() -> list[str]:
    """A step's command: the AWS SDK for JavaScript v3 (append a provider, count, pause)."""
    node = shutil.which("node")
    require_client(node is not None, "Node.js", "the machine's Node.js 20")
    require_client(
        (CLIENTS / "node" / "node_modules" / "@aws-sdk" / "client-sts").is_dir(),
        "the AWS SDK for JavaScript v3",
        "bash .ci/run runs npm ci in tests/clients/node",
    )
    assert node is not None
    return [node, str(NODE_CLIENT)]


@pytest.fixture(scope="session")
def gcloud() -> Path:
    """The machine's gcloud CLI."""
    found = shutil.which("gcloud")
    require_client(found is not None, "gcloud", "the machine's Google Cloud CLI, /usr/bin/gcloud")
    assert found is not None
    return Path(found)


@pytest.fixture(scope="session")
def long_lived_aws_user(sandbox: dict[str, Any]) -> LongLivedAwsUser:
    """A long-lived IAM user in the sandbox's moto, with an access key."""
    import boto3  # noqa: PLC0415 - only the tests that plant a home need it

    iam = boto3.client(
        "iam",
        endpoint_url=sandbox["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    user = iam.create_user(UserName="runner-long-lived")["User"]
    key = iam.create_access_key(UserName="runner-long-lived")["AccessKey"]
    return LongLivedAwsUser(user["Arn"], key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture(scope="session")
def planted_private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def planted_home(
    home: Path, long_lived_aws_user: LongLivedAwsUser, planted_private_key_pem: str
) -> PlantedHome:
    """The test's `home` (the runner's HOME) with long-lived AWS and Google credentials."""
    return plant(home, long_lived_aws_user, planted_private_key_pem)

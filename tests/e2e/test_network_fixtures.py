"""The test network, proven with the real SDKs: what "behaves as the SDKs do" means.

The emulators are reachable only as `*.nhi-test.invalid` through the forward proxy, and over
HTTPS only with the private CA. Each client here runs as a real process in a clean
environment (this machine's own CA and proxy variables are not inherited).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.clients.fixtures import BOTO3_CLIENT, client_report, run_client
from tests.clients.planted_home import LongLivedAwsUser
from tests.net.network import GCP_HOST, STS_HOST, TOKEN_HOST, EmulatorNetwork
from tests.net.proxy import ForwardProxy

pytestmark = pytest.mark.e2e

# requests as a step's command: GitHub's token-request protocol, then the GCP emulator's
# tokeninfo; prints what it got (the token's claims' names only: the token is a secret).
REQUESTS_CLIENT = """
import json, os, requests
url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=sts.amazonaws.com"
bearer = {"Authorization": "Bearer " + os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]}
try:
    token = requests.get(url, headers=bearer, timeout=10).json()
    info = requests.get(os.environ["NHI_GCP_STS_ENDPOINT"] + "/tokeninfo", timeout=10)
except requests.RequestException as error:
    print(json.dumps({"client": "requests", "error": type(error).__name__ + ": " + str(error)}))
    raise SystemExit(1)
print(json.dumps({"client": "requests", "token_fields": sorted(token), "tokeninfo": info.json()}))
"""


def _aws_env(env: dict[str, str], user: LongLivedAwsUser, **settings: str) -> dict[str, str]:
    """`env` with static keys (moto answers with their user) and one attempt per call."""
    return (
        env
        | {
            "AWS_ACCESS_KEY_ID": user.access_key_id,
            "AWS_SECRET_ACCESS_KEY": user.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "1",
        }
        | settings
    )


@pytest.fixture
def sts_by_name(
    base_env: dict[str, str], long_lived_aws_user: LongLivedAwsUser, forward_proxy: ForwardProxy
) -> dict[str, str]:
    """boto3's view: STS at https://sts.nhi-test.invalid, through the proxy, no CA yet."""
    return _aws_env(
        base_env,
        long_lived_aws_user,
        AWS_ENDPOINT_URL_STS=f"https://{STS_HOST}",
        HTTPS_PROXY=forward_proxy.url,
    )


def test_boto3_reaches_sts_by_name_through_the_proxy_trusting_aws_ca_bundle(
    sts_by_name: dict[str, str],
    forward_proxy: ForwardProxy,
    emulator_network: EmulatorNetwork,
    long_lived_aws_user: LongLivedAwsUser,
) -> None:
    before = emulator_network.handshakes()[STS_HOST]
    ca = str(emulator_network.ca.bundle)
    done = run_client([sys.executable, str(BOTO3_CLIENT)], sts_by_name | {"AWS_CA_BUNDLE": ca})
    assert done.returncode == 0, done.stdout + done.stderr
    assert client_report(done.stdout)["arn"] == long_lived_aws_user.arn
    assert [(r.method, r.authority, r.outcome) for r in forward_proxy.records] == [
        ("CONNECT", f"{STS_HOST}:443", "tunnelled")
    ]
    assert emulator_network.handshakes()[STS_HOST] == before + 1


def test_boto3_refuses_the_private_certificate_without_the_ca_bundle(
    sts_by_name: dict[str, str], forward_proxy: ForwardProxy, emulator_network: EmulatorNetwork
) -> None:
    refused = len(emulator_network.failed_handshakes()[STS_HOST])
    done = run_client([sys.executable, str(BOTO3_CLIENT)], sts_by_name)
    assert done.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in client_report(done.stdout)["error"]
    assert forward_proxy.authorities() == {f"{STS_HOST}:443"}  # it went the right way
    failures = emulator_network.failed_handshakes()[STS_HOST][refused:]
    assert failures == ["TLSV1_ALERT_UNKNOWN_CA"]  # the client refused our certificate


def test_a_client_that_bypasses_the_proxy_cannot_resolve_the_emulators(
    sts_by_name: dict[str, str], forward_proxy: ForwardProxy, emulator_network: EmulatorNetwork
) -> None:
    direct = {k: v for k, v in sts_by_name.items() if k != "HTTPS_PROXY"}
    done = run_client(
        [sys.executable, str(BOTO3_CLIENT)],
        direct | {"AWS_CA_BUNDLE": str(emulator_network.ca.bundle)},
    )
    assert done.returncode == 1
    assert "EndpointConnectionError" in client_report(done.stdout)["error"]
    assert forward_proxy.records == []


def test_plain_http_through_the_proxy_is_forwarded_and_logged_with_its_path(
    sts_by_name: dict[str, str], forward_proxy: ForwardProxy, long_lived_aws_user: LongLivedAwsUser
) -> None:
    plain = sts_by_name | {
        "AWS_ENDPOINT_URL_STS": f"http://{STS_HOST}",
        "HTTP_PROXY": forward_proxy.url,
    }
    done = run_client([sys.executable, str(BOTO3_CLIENT)], plain)
    assert done.returncode == 0, done.stdout + done.stderr
    assert client_report(done.stdout)["arn"] == long_lived_aws_user.arn
    assert [(r.method, r.authority, r.path, r.tunnel) for r in forward_proxy.records] == [
        ("POST", f"{STS_HOST}:80", "/", False)
    ]


def test_the_aws_cli_honours_https_proxy_and_aws_ca_bundle(
    sts_by_name: dict[str, str],
    forward_proxy: ForwardProxy,
    emulator_network: EmulatorNetwork,
    long_lived_aws_user: LongLivedAwsUser,
    aws_cli_command: list[str],
) -> None:
    trusted = run_client(
        aws_cli_command, sts_by_name | {"AWS_CA_BUNDLE": str(emulator_network.ca.bundle)}
    )
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert client_report(trusted.stdout)["arn"] == long_lived_aws_user.arn
    assert forward_proxy.authorities() == {f"{STS_HOST}:443"}
    untrusted = run_client(aws_cli_command, sts_by_name)
    assert untrusted.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in client_report(untrusted.stdout)["error"]


def test_requests_honours_the_proxy_and_requests_ca_bundle(
    named_env: dict[str, str], forward_proxy: ForwardProxy, emulator_network: EmulatorNetwork
) -> None:
    command = [sys.executable, "-c", REQUESTS_CLIENT]
    ca = str(emulator_network.ca.bundle)
    trusted = run_client(command, named_env | {"REQUESTS_CA_BUNDLE": ca})
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    report = client_report(trusted.stdout)
    assert report["token_fields"] == ["count", "value"]  # GitHub's token answer
    assert report["tokeninfo"]["error"] == "invalid_token"  # the GCP emulator answered
    assert [r.authority for r in forward_proxy.records] == [f"{TOKEN_HOST}:443", f"{GCP_HOST}:443"]
    untrusted = run_client(command, named_env)
    assert untrusted.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in client_report(untrusted.stdout)["error"]


def test_no_proxy_exempts_the_hosts_it_names(
    named_env: dict[str, str],
    sandbox: dict[str, Any],
    forward_proxy: ForwardProxy,
    emulator_network: EmulatorNetwork,
) -> None:
    # The token endpoint by name through the proxy; GCP directly at https://localhost:PORT.
    gcp = emulator_network.front(GCP_HOST).direct_url
    env = named_env | {
        "NHI_GCP_STS_ENDPOINT": gcp,
        "NO_PROXY": "localhost",
        "REQUESTS_CA_BUNDLE": str(emulator_network.ca.bundle),
    }
    done = run_client([sys.executable, "-c", REQUESTS_CLIENT], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert client_report(done.stdout)["tokeninfo"]["error"] == "invalid_token"
    assert [r.authority for r in forward_proxy.records] == [f"{TOKEN_HOST}:443"]


def test_no_proxy_exempts_a_loopback_address_for_boto3(
    sts_by_name: dict[str, str],
    sandbox: dict[str, Any],
    forward_proxy: ForwardProxy,
    long_lived_aws_user: LongLivedAwsUser,
) -> None:
    direct = sts_by_name | {
        "AWS_ENDPOINT_URL_STS": sandbox["aws_endpoint"],
        "NO_PROXY": "127.0.0.1",
    }
    done = run_client([sys.executable, str(BOTO3_CLIENT)], direct)
    assert done.returncode == 0, done.stdout + done.stderr
    assert client_report(done.stdout)["arn"] == long_lived_aws_user.arn
    assert forward_proxy.records == []


def test_the_authenticating_proxy_admits_only_the_credentials_in_the_proxy_url(
    sts_by_name: dict[str, str],
    authenticating_proxy: ForwardProxy,
    emulator_network: EmulatorNetwork,
    long_lived_aws_user: LongLivedAwsUser,
) -> None:
    assert authenticating_proxy.credentials is not None
    password = authenticating_proxy.credentials.password
    env = sts_by_name | {"AWS_CA_BUNDLE": str(emulator_network.ca.bundle)}
    admitted = run_client(
        [sys.executable, str(BOTO3_CLIENT)],
        env | {"HTTPS_PROXY": authenticating_proxy.url_with_credentials},
    )
    assert admitted.returncode == 0, admitted.stdout + admitted.stderr
    assert client_report(admitted.stdout)["arn"] == long_lived_aws_user.arn
    wrong = authenticating_proxy.url_with_credentials.replace(password, "not-the-password")
    refused = run_client([sys.executable, str(BOTO3_CLIENT)], env | {"HTTPS_PROXY": wrong})
    assert refused.returncode == 1
    assert "ProxyConnectionError" in client_report(refused.stdout)["error"]
    assert "not-the-password" not in refused.stdout + refused.stderr  # botocore masks it
    assert [(r.authorized, r.outcome) for r in authenticating_proxy.records] == [
        (True, "tunnelled"),
        (False, "proxy-auth-required"),
    ]
    assert password not in admitted.stdout + admitted.stderr


def test_the_proxy_refuses_hosts_it_has_no_route_for_without_connecting(
    named_env: dict[str, str], forward_proxy: ForwardProxy
) -> None:
    code = (
        "import requests\n"
        "print(requests.get('http://registry.example/simple/', timeout=10).status_code)"
    )
    done = run_client([sys.executable, "-c", code], named_env)
    assert done.stdout.strip() == "502"
    assert [(r.authority, r.outcome) for r in forward_proxy.records] == [
        ("registry.example:80", "unknown-host")
    ]


def test_the_javascript_sdk_ignores_https_proxy_on_node_20(
    sts_by_name: dict[str, str], forward_proxy: ForwardProxy, node_sdk_command: list[str]
) -> None:
    done = run_client(node_sdk_command, sts_by_name | {"AWS_REGION": "us-east-1"})
    assert done.returncode == 1
    assert f"ENOTFOUND {STS_HOST}" in client_report(done.stdout)["error"]
    assert forward_proxy.records == []  # it resolved the name itself, and failed


def test_the_javascript_sdk_trusts_node_extra_ca_certs_and_not_aws_ca_bundle(
    sts_by_name: dict[str, str],
    emulator_network: EmulatorNetwork,
    long_lived_aws_user: LongLivedAwsUser,
    node_sdk_command: list[str],
) -> None:
    ca = str(emulator_network.ca.bundle)
    direct = sts_by_name | {
        "AWS_ENDPOINT_URL_STS": emulator_network.front(STS_HOST).direct_url,
        "AWS_REGION": "us-east-1",
    }
    ignored = run_client(node_sdk_command, direct | {"AWS_CA_BUNDLE": ca, "SSL_CERT_FILE": ca})
    assert ignored.returncode == 1
    assert "unable to verify the first certificate" in client_report(ignored.stdout)["error"]
    trusted = run_client(node_sdk_command, direct | {"NODE_EXTRA_CA_CERTS": ca})
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert client_report(trusted.stdout)["arn"] == long_lived_aws_user.arn

"""`nhi-invoke run` with Azure: the installed nhi-invoke against the Entra emulator over TLS
(a certificate from a trustme CA), on a GitHub job's environment (the sandbox's OIDC issuer),
with azure-identity as the step's command. Each token the command gets is minted for this
invocation, recorded, and masked."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import trustme

from nhi_invoke.oidc import fingerprint
from nhi_invoke.sandbox.azure import EntraEmulator
from nhi_invoke.sandbox.entra_directory import (
    DEFAULT_AUDIENCE,
    SANDBOX_CLIENT_ID,
    SANDBOX_OBJECT_ID,
    SANDBOX_TENANT_ID,
    sandbox_directory,
)
from nhi_invoke.sandbox.oidc_issuer import OidcIssuer
from tests.azure_fixtures import AZURE_CHILD, github_subject, trustme_tls
from tests.e2e.runs import NHI, Result, ledger_events, run_nhi

pytestmark = pytest.mark.e2e

AZURE = ["--azure-client-id", SANDBOX_CLIENT_ID, "--azure-tenant-id", SANDBOX_TENANT_ID]
ARM = "https://management.azure.com/.default"
VAULT = "https://vault.azure.net/.default"
PROBE = str(Path(__file__).with_name("child_azure_endpoint.py"))
CLOUDS_CHILD = str(Path(__file__).with_name("child_clouds.py"))
# The namespace nhi-invoke derives Entra's client-request-id from (documented in docs/azure.md).
REQUEST_ID_NAMESPACE = uuid.UUID("6f3b0c52-8d1e-5a47-9c2b-7e4f1d0a3b96")


@pytest.fixture(scope="module")
def entra(
    sandbox: dict[str, Any],
    assertion_issuer: OidcIssuer,
    trustme_ca: trustme.CA,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EntraEmulator]:
    """The Entra emulator behind a certificate from a trustme CA, federating the sandbox
    issuer's GitHub subject and the tests' own issuer's."""
    own = assertion_issuer.run
    trusted = [
        (sandbox["oidc_issuer"], github_subject(sandbox["environ"])),
        (assertion_issuer.url, f"repo:{own.repository}:ref:{own.ref}"),
    ]
    tls = trustme_tls(trustme_ca, tmp_path_factory.mktemp("trustme"))
    emulator = EntraEmulator(sandbox_directory(trusted), tls=tls).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def azure_github_env(github_env: dict[str, str], entra: EntraEmulator) -> dict[str, str]:
    """A GitHub job whose Entra is the emulator: nhi-invoke trusts its CA for Entra alone; the
    child's requests trusts it to call the emulator's whoami."""
    return github_env | {
        "AZURE_AUTHORITY_HOST": entra.url,
        "NHI_AZURE_CA_BUNDLE": entra.ca_file,
        "REQUESTS_CA_BUNDLE": entra.ca_file,
    }


def reports(result: Result) -> list[dict[str, Any]]:
    """The JSON reports tests/e2e/child_azure.py printed."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def azure_grants(env: dict[str, str]) -> list[dict[str, Any]]:
    return [
        e
        for e in ledger_events(env)
        if e["event"] == "credential.issued" and e.get("cloud") == "azure"
    ]


def invocation_id(env: dict[str, str]) -> str:
    (started,) = [e for e in ledger_events(env) if e["event"] == "invocation.started"]
    return str(started["invocation_id"])


def entra_asked(entra: EntraEmulator, client_request_id: str) -> list[Any]:
    return [r for r in entra.requests() if r.client_request_id == client_request_id]


def azure_child(*args: str) -> list[str]:
    return [sys.executable, AZURE_CHILD, *args]


def test_managed_identity_credential_gets_a_token_minted_for_this_invocation(
    azure_github_env: dict[str, str], entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    whoami = f"{entra.url}/__sandbox/whoami?audience=https://management.azure.com"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "deploy",
            *AZURE,
            "--",
            *azure_child("managed", ARM, "--whoami", whoami),
        ],
        azure_github_env,
    )
    assert result.code == 0, result.stderr
    (report,) = reports(result)
    assert report["ok"], report
    assert report["whoami"]["claims"]["appid"] == SANDBOX_CLIENT_ID
    (grant,) = azure_grants(azure_github_env)
    # The token the command holds is the one the ledger records, minted for this invocation.
    assert grant["token_id"] == report["claims"]["uti"]
    assert grant["expires_at"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(report["expires_on"]))
    )
    assert (grant["principal"], grant["principal_id"]) == (SANDBOX_CLIENT_ID, SANDBOX_OBJECT_ID)
    assert (grant["resource"], grant["tenant_id"]) == (
        "https://management.azure.com",
        SANDBOX_TENANT_ID,
    )
    inv = invocation_id(azure_github_env)
    assert grant["client_request_id"] == str(uuid.uuid5(REQUEST_ID_NAMESPACE, inv))
    (asked,) = entra_asked(entra, grant["client_request_id"])
    assert asked.token_fingerprint == grant["fingerprint"]
    assert asked.correlation_id == grant["client_request_id"]  # Entra's sign-in logs
    assert (asked.client_sku, asked.form["scope"]) == ("nhi-invoke", ARM)
    assert asked.assertion.claims["sub"] == github_subject(sandbox["environ"])
    assert asked.assertion.claims["aud"] == DEFAULT_AUDIENCE
    assert asked.assertion.fingerprint == grant["oidc"]["fingerprint"]


def test_default_azure_credential_uses_the_endpoint_and_nothing_after_it(
    azure_github_env: dict[str, str], entra: EntraEmulator, tmp_path: Path
) -> None:
    # A job-wide login the step must not fall back to: the runner's Azure CLI folder.
    (Path(azure_github_env["HOME"]) / ".azure").mkdir()
    result = run_nhi(
        [
            "run",
            "--step-id",
            "deploy",
            *AZURE,
            "--",
            "sh",
            "-c",
            f'"{sys.executable}" "{AZURE_CHILD}" default {ARM}; '
            f'"{sys.executable}" "{AZURE_CHILD}" default {VAULT}',
        ],
        azure_github_env,
    )
    assert result.code == 0, result.stderr
    allowed, refused = reports(result)
    assert allowed["ok"], allowed
    assert allowed["claims"]["appid"] == SANDBOX_CLIENT_ID
    assert allowed["chain"] == [
        "EnvironmentCredential",
        "FailedDACCredential",  # WorkloadIdentityCredential: no token file (it was not passed)
        "ManagedIdentityCredential",
    ]
    # AZURE_TOKEN_CREDENTIALS=prod: a refusal ends the chain, no CLI/PowerShell/azd login.
    assert not refused["ok"]
    assert "may not get tokens for 'https://vault.azure.net'" in refused["error"]
    assert "AzureCliCredential" not in refused["error"]


def test_a_scope_that_was_not_allowed_is_refused_and_never_asked_of_entra(
    azure_github_env: dict[str, str], entra: EntraEmulator
) -> None:
    result = run_nhi(
        ["run", "--step-id", "deploy", *AZURE, "--", *azure_child("managed", VAULT)],
        azure_github_env,
    )
    assert result.code == 0, result.stderr
    (report,) = reports(result)
    assert not report["ok"]
    assert report["error_type"] == "CredentialUnavailableError"
    assert (
        "400, nhi-invoke: this step may not get tokens for 'https://vault.azure.net' "
        "(allowed: https://management.azure.com/.default); fix: add --azure-scope "
        "https://vault.azure.net/.default to the step if it needs it"
    ) in report["error"]
    (grant,) = azure_grants(azure_github_env)  # the first, checked before the command
    assert [r.form["scope"] for r in entra_asked(entra, grant["client_request_id"])] == [ARM]


def test_another_allowed_scope_is_minted_when_asked_for_and_recorded(
    azure_github_env: dict[str, str], entra: EntraEmulator
) -> None:
    whoami = f"{entra.url}/__sandbox/whoami?audience=https://vault.azure.net"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "deploy",
            *AZURE,
            "--azure-scope",
            ARM,
            "--azure-scope",
            VAULT,
            "--",
            *azure_child("managed", VAULT, "--whoami", whoami, "--times", "3"),
        ],
        azure_github_env,
    )
    assert result.code == 0, result.stderr
    (report,) = reports(result)
    assert report["ok"], report
    assert report["whoami"]["claims"]["aud"] == "https://vault.azure.net"
    grants = azure_grants(azure_github_env)
    assert [g["resource"] for g in grants] == [
        "https://management.azure.com",
        "https://vault.azure.net",
    ]
    assert grants[1]["token_id"] == report["claims"]["uti"]
    # Both tokens expire; the ledger keeps each one's exposure after the command.
    closed = [e for e in ledger_events(azure_github_env) if e["event"] == "credential.expiring"]
    assert sorted(e["fingerprint"] for e in closed) == sorted(g["fingerprint"] for g in grants)
    assert all(e["exposure_seconds"] > 3000 for e in closed)


def test_after_a_forced_assertion_refresh_the_next_token_request_still_works(
    azure_github_env: dict[str, str],
    entra: EntraEmulator,
    assertion_issuer: OidcIssuer,
    tmp_path: Path,
) -> None:
    # The first OIDC token has 45 s left: under the broker's one-minute margin, so the next
    # exchange fetches a fresh one. The token file is rotated (as a CI's file would be) by
    # the command, between the first token and the second.
    first = assertion_issuer.mint(DEFAULT_AUDIENCE, exp=int(time.time()) + 45)
    second = assertion_issuer.mint(DEFAULT_AUDIENCE)
    token_file, next_file = tmp_path / "oidc-token", tmp_path / "oidc-token.next"
    token_file.write_text(first)
    next_file.write_text(second)
    report_path = tmp_path / "rotate.json"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "long-deploy",
            "--token-file",
            str(token_file),
            *AZURE,
            "--azure-scope",
            ARM,
            "--azure-scope",
            VAULT,
            "--",
            sys.executable,
            PROBE,
            "rotate",
            str(report_path),
            VAULT,
            str(token_file),
            str(next_file),
        ],
        azure_github_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    arm, vault = azure_grants(azure_github_env)
    assert arm["oidc"]["fingerprint"] == fingerprint(first)
    assert (vault["oidc"]["fingerprint"], vault["oidc"]["fresh"]) == (fingerprint(second), True)
    assert vault["fingerprint"] == report["token_fp"]
    asked = entra_asked(entra, vault["client_request_id"])
    assert [r.assertion.fingerprint for r in asked] == [fingerprint(first), fingerprint(second)]


def _gone(url: str) -> bool:
    try:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2)
    except urllib.error.HTTPError:
        return False  # something still answers
    except OSError:
        return True
    return False


def test_the_endpoint_refuses_a_missing_or_wrong_header_and_is_gone_after_the_command(
    azure_github_env: dict[str, str], tmp_path: Path
) -> None:
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
        azure_github_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    for name in ("without_header", "wrong_header", "empty_header"):
        assert report[name] == {
            "status": 401,
            "body": {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"},
        }, name
    for name in (
        "other_identity",
        "by_object_id",
        "other_resource",
        "old_api_version",
        "no_resource",
    ):
        assert report[name]["status"] == 400, name
        assert report[name]["body"]["statusCode"] == 400
    assert (
        "this step's identity is " + SANDBOX_CLIENT_ID
        in report["other_identity"]["body"]["message"]
    )
    allowed = report["allowed"]
    assert allowed["status"] == 200
    assert allowed["fields"] == [
        "access_token",
        "client_id",
        "expires_on",
        "resource",
        "token_type",
    ]
    assert allowed["client_id"] == SANDBOX_CLIENT_ID
    # The token held is served again until it nears its end: one token, checked at start.
    assert report["allowed_again"]["token_fp"] == allowed["token_fp"]
    (grant,) = azure_grants(azure_github_env)
    assert grant["fingerprint"] == allowed["token_fp"]
    assert report["values"] == {
        "AZURE_CLIENT_ID": SANDBOX_CLIENT_ID,
        "AZURE_TENANT_ID": SANDBOX_TENANT_ID,
        "AZURE_TOKEN_CREDENTIALS": "prod",
    }
    assert report["endpoint"].startswith("http://127.0.0.1:")
    # Nor can it mint an identity of its own: the CI's token-request variables are gone.
    assert not {"ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL"} & set(
        report["names"]
    )
    assert (report["config_dir_mode"], report["config_dir_entries"]) == ("0o700", [])
    # After the command: nothing listens, and the private Azure CLI folder is gone.
    assert _gone(
        report["endpoint"] + "?api-version=2019-08-01&resource=https://management.azure.com"
    )
    assert not Path(report["config_dir"]).exists()
    # The header, the OIDC token and the access token were masked before anything could
    # show them (the leak sweep then checks every output and file for them).
    masked = {fingerprint(value) for value in result.masked}
    assert {report["header_fp"], grant["fingerprint"], grant["oidc"]["fingerprint"]} <= masked


def test_aws_gcp_and_azure_in_one_invocation(
    azure_github_env: dict[str, str], entra: EntraEmulator, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    report_path = tmp_path / "clouds.json"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "release",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--gcp-provider",
            sandbox["gcp_provider"],
            "--gcp-service-account",
            sandbox["gcp_service_account"],
            *AZURE,
            "--",
            sys.executable,
            CLOUDS_CHILD,
            str(report_path),
        ],
        azure_github_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert ":assumed-role/nhi-sandbox-deploy/release." in report["aws"]
    assert report["gcp"] == sandbox["gcp_service_account"]
    assert report["azure"]["appid"] == SANDBOX_CLIENT_ID
    events = ledger_events(azure_github_env)
    assert {e["invocation_id"] for e in events} == {report["invocation"]}
    (started,) = [e for e in events if e["event"] == "invocation.started"]
    assert started["clouds"] == ["aws", "gcp", "azure"]
    child = {
        e["cloud"]: e
        for e in events
        if e["event"] == "credential.issued" and e["purpose"] == "child"
    }
    assert set(child) == {"aws", "gcp", "azure"}
    assert child["azure"]["token_id"] == report["azure"]["uti"]
    assert child["gcp"]["principal"] == sandbox["gcp_service_account"]


def test_another_invocations_endpoint_refuses_this_ones_header(
    azure_github_env: dict[str, str], tmp_path: Path
) -> None:
    # Two invocations at once (two agent tasks, two steps of a matrix on one machine): the
    # second one's command finds the first one's endpoint and tries it with its own header.
    # The first command's report (a JSON file with "secrets": the endpoint's random path is
    # a secret the command may hold, which the leak sweep would otherwise find in the file).
    found, done, verdict = tmp_path / "first.json", tmp_path / "done", tmp_path / "verdict"
    first = (
        f'printf \'{{"secrets": [], "endpoint": "%s"}}\' "$IDENTITY_ENDPOINT" > {found}.tmp'
        f' && mv {found}.tmp {found}; while [ ! -f "{done}" ]; do sleep 0.05; done'
    )
    second = (
        "import os, time, urllib.request, urllib.error, pathlib\n"
        f"found, done, verdict = map(pathlib.Path, {[str(found), str(done), str(verdict)]!r})\n"
        "while not found.exists(): time.sleep(0.05)\n"
        "import json; endpoint = json.loads(found.read_text())['endpoint']\n"
        "url = endpoint + '?api-version=2019-08-01&resource=https://management.azure.com'\n"
        "headers = {'X-IDENTITY-HEADER': os.environ['IDENTITY_HEADER']}\n"
        "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
        "try:\n"
        "    opener.open(urllib.request.Request(url, headers=headers), timeout=10)\n"
        "    verdict.write_text('200')\n"
        "except urllib.error.HTTPError as refused:\n"
        "    verdict.write_text(str(refused.code))\n"
        "done.touch()\n"
    )
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(
                run_nhi,
                ["run", "--step-id", "a", *AZURE, "--", "sh", "-c", first],
                azure_github_env,
            ),
            pool.submit(
                run_nhi,
                ["run", "--step-id", "b", *AZURE, "--", sys.executable, "-c", second],
                azure_github_env,
            ),
        ]
        results = [r.result() for r in runs]
    assert [r.code for r in results] == [0, 0], [r.stderr for r in results]
    assert verdict.read_text() == "401"


def test_after_nhi_invoke_is_killed_revoke_records_each_azure_token_with_its_expiry(
    azure_github_env: dict[str, str], tmp_path: Path
) -> None:
    started, config = tmp_path / "child.pid", tmp_path / "config-dir"
    script = f'echo "$AZURE_CONFIG_DIR" > "{config}"; echo $$ > "{started}"; exec sleep 60'
    nhi = subprocess.Popen(
        [NHI, "run", "--step-id", "crash", *AZURE, "--", "sh", "-c", script],
        env=azure_github_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (started.exists() and started.read_text().strip()):
        if nhi.poll() is not None or time.monotonic() > deadline:
            nhi.kill()
            pytest.fail("the command did not start")
        time.sleep(0.05)
    try:
        nhi.kill()  # SIGKILL: nhi-invoke gets no chance to clean up
        nhi.wait(timeout=10)
        result = run_nhi(["revoke"], azure_github_env)
    finally:
        os.kill(int(started.read_text()), signal.SIGKILL)
        # What a SIGKILL leaves: the command's (empty) Azure CLI folder, with nothing to end it.
        shutil.rmtree(config.read_text().strip(), ignore_errors=True)
    assert result.code == 0, result.stderr
    (grant,) = azure_grants(azure_github_env)
    closed = [e for e in ledger_events(azure_github_env) if e["event"] == "credential.expiring"]
    assert [e["fingerprint"] for e in closed] == [grant["fingerprint"]]
    assert closed[0]["reason"] == "recorded by nhi-invoke revoke"
    assert closed[0]["expires_at"] == grant["expires_at"]

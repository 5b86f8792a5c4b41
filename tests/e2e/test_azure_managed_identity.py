"""What azure-identity asks of an App Service managed-identity endpoint, and what it needs back,
observed with a throwaway endpoint: the facts the broker's `--serve` endpoint is built on
(docs/azure.md, "Notes for the broker"). Each client runs as a child configured by its
environment alone, as a step's command would."""

from __future__ import annotations

import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.sandbox.azure import EntraEmulator
from nhi_invoke.sandbox.entra_directory import SANDBOX_CLIENT_ID, SANDBOX_TENANT_ID
from nhi_invoke.sandbox.loopback import JsonHandler, LoopbackService
from tests.azure_fixtures import closed_port_url, run_azure_child, sandbox_assertion

pytestmark = pytest.mark.e2e

ARM = "https://management.azure.com/.default"
PATH = "/msi/token"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


Reply = Callable[[dict[str, str]], tuple[int, dict[str, Any]]]


def full_reply(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Every field App Service documents, `expires_on` as a string of epoch seconds."""
    return 200, {
        "access_token": "opaque-" + secrets.token_urlsafe(16),
        "expires_on": str(int(time.time()) + 3600),
        "resource": query.get("resource", ""),
        "token_type": "Bearer",
        "client_id": query.get("client_id", SANDBOX_CLIENT_ID),
    }


class AppServiceEndpoint(LoopbackService):
    """A throwaway App Service identity endpoint: records each request, answers `reply`."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.reply: Reply = full_reply
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                with endpoint._lock:
                    endpoint.seen.append(
                        Seen(
                            "GET",
                            parts.path,
                            query,
                            {k.lower(): v for k, v in self.headers.items()},
                        )
                    )
                self.send_json(*endpoint.reply(query))

        return Handler


@pytest.fixture
def endpoint() -> Iterator[AppServiceEndpoint]:
    server = AppServiceEndpoint().start()
    yield server
    server.stop()


@pytest.fixture
def identity_env(base_env: dict[str, str], endpoint: AppServiceEndpoint) -> dict[str, str]:
    return base_env | {
        "IDENTITY_ENDPOINT": endpoint.url + PATH,
        "IDENTITY_HEADER": "header-" + secrets.token_hex(8),
    }


def test_managed_identity_credential_asks_the_app_service_endpoint(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str]
) -> None:
    # The authority host plays no part in the managed-identity protocol.
    env = identity_env | {"AZURE_AUTHORITY_HOST": "https://login.example.invalid"}
    report = run_azure_child(env, "managed", ARM)
    assert report["ok"], report
    (seen,) = endpoint.seen
    assert (seen.method, seen.path) == ("GET", PATH)
    assert seen.query == {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
    assert seen.headers["x-identity-header"] == identity_env["IDENTITY_HEADER"]
    assert seen.headers["metadata"] == "true"


@pytest.mark.parametrize(
    ("scope", "resource"),
    [
        ("https://management.core.windows.net//.default", "https://management.core.windows.net/"),
        ("https://vault.azure.net/.default", "https://vault.azure.net"),
        ("api://nhi-sandbox-api/.default", "api://nhi-sandbox-api"),
    ],
)
def test_the_resource_asked_for_is_the_scope_without_default(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str], scope: str, resource: str
) -> None:
    assert run_azure_child(identity_env, "managed", scope)["ok"]
    assert endpoint.seen[0].query["resource"] == resource


def test_an_inherited_server_thumbprint_turns_the_endpoint_into_service_fabrics(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str]
) -> None:
    env = identity_env | {"IDENTITY_SERVER_THUMBPRINT": "00" * 20}
    report = run_azure_child(env, "managed", ARM)
    assert not report["ok"]
    assert "Service Fabric managed identity endpoint must use HTTPS" in report["error"]
    assert endpoint.seen == []


def test_a_user_assigned_identity_is_asked_for_by_client_id(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str]
) -> None:
    report = run_azure_child(identity_env, "managed", ARM, "--client-id", SANDBOX_CLIENT_ID)
    assert report["ok"], report
    assert endpoint.seen[0].query["client_id"] == SANDBOX_CLIENT_ID


@pytest.mark.parametrize(
    ("fields", "works"),
    [
        ({"access_token", "expires_on"}, True),
        ({"access_token", "expires_on", "resource", "token_type", "client_id"}, True),
        ({"access_token", "resource", "token_type", "client_id"}, False),
        ({"expires_on", "resource", "token_type", "client_id"}, False),
    ],
    ids=["minimal", "documented", "no-expires_on", "no-access_token"],
)
def test_the_answer_needs_access_token_and_expires_on(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str], fields: set[str], works: bool
) -> None:
    def reply(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        status, body = full_reply(query)
        return status, {k: v for k, v in body.items() if k in fields} | (
            {} if "expires_on" in fields else {"expires_in": 3600}
        )

    endpoint.reply = reply
    report = run_azure_child(identity_env, "managed", ARM)
    assert report["ok"] is works, report


def test_expires_on_may_be_a_number_or_a_string_of_epoch_seconds(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str]
) -> None:
    expires_on = int(time.time()) + 3600

    def reply(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return 200, full_reply(query)[1] | {"expires_on": expires_on}

    endpoint.reply = reply
    report = run_azure_child(identity_env, "managed", ARM)
    assert report["ok"], report
    assert report["expires_on"] == expires_on


@pytest.mark.parametrize(("lifetime", "requests_made"), [(3600, 1), (200, 2)])
def test_a_token_is_reused_until_five_minutes_before_it_expires(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str], lifetime: int, requests_made: int
) -> None:
    def reply(query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return 200, full_reply(query)[1] | {"expires_on": str(int(time.time()) + lifetime)}

    endpoint.reply = reply
    report = run_azure_child(identity_env, "managed", ARM, "--times", "2")
    assert report["ok"], report
    assert len(endpoint.seen) == requests_made


def test_an_error_status_from_the_endpoint_fails_the_credential(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str]
) -> None:
    endpoint.reply = lambda query: (400, {"statusCode": 400, "message": "scope not allowed"})
    report = run_azure_child(identity_env, "managed", "https://vault.azure.net/.default")
    assert not report["ok"]
    # MSAL shows App Service's error fields, statusCode and message, and nothing else.
    assert report["error_type"] == "CredentialUnavailableError"
    assert "(invalid_scope) 400, scope not allowed" in report["error"]


def test_a_refusal_from_the_endpoint_lets_default_azure_credential_try_the_next_ones(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str]
) -> None:
    endpoint.reply = lambda query: (400, {"statusCode": 400, "message": "scope not allowed"})
    report = run_azure_child(identity_env, "default", "https://vault.azure.net/.default")
    assert not report["ok"]
    attempted = report["error"].split("Attempted credentials:")[1]
    assert "ManagedIdentityCredential" in attempted
    assert attempted.index("ManagedIdentityCredential") < attempted.index("AzureCliCredential")


def test_default_azure_credential_tries_environment_then_workload_then_managed_identity(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str]
) -> None:
    env = identity_env | {
        "AZURE_CLIENT_ID": SANDBOX_CLIENT_ID,
        "AZURE_TENANT_ID": SANDBOX_TENANT_ID,
    }
    report = run_azure_child(env, "default", ARM)
    assert report["ok"], report
    assert report["chain"][:3] == [
        "EnvironmentCredential",
        "FailedDACCredential",  # WorkloadIdentityCredential, without AZURE_FEDERATED_TOKEN_FILE
        "ManagedIdentityCredential",
    ]
    # AZURE_CLIENT_ID becomes the managed identity's client_id on the request.
    assert endpoint.seen[0].query["client_id"] == SANDBOX_CLIENT_ID


def test_default_azure_credential_prefers_a_federated_token_file_to_the_endpoint(
    endpoint: AppServiceEndpoint,
    identity_env: dict[str, str],
    entra: EntraEmulator,
    sandbox: dict[str, Any],
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "federated-token"
    token_file.write_text(sandbox_assertion(sandbox))
    env = identity_env | {
        "AZURE_CLIENT_ID": SANDBOX_CLIENT_ID,
        "AZURE_TENANT_ID": SANDBOX_TENANT_ID,
        "AZURE_AUTHORITY_HOST": entra.url,
        "REQUESTS_CA_BUNDLE": entra.ca_file,
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
    }
    report = run_azure_child(env, "default", ARM)
    assert report["ok"], report
    assert report["chain"][1] == "WorkloadIdentityCredential"
    assert report["claims"]["appid"] == SANDBOX_CLIENT_ID  # minted by Entra, not the endpoint
    assert endpoint.seen == []


def test_default_azure_credential_prefers_a_client_secret_to_the_endpoint(
    endpoint: AppServiceEndpoint, identity_env: dict[str, str]
) -> None:
    # The secret makes EnvironmentCredential try Entra (login.microsoftonline.com): through a
    # proxy on 127.0.0.1 where nothing listens, so nothing leaves the machine.
    env = identity_env | {
        "AZURE_CLIENT_ID": SANDBOX_CLIENT_ID,
        "AZURE_TENANT_ID": SANDBOX_TENANT_ID,
        "AZURE_CLIENT_SECRET": "inherited-" + secrets.token_hex(8),
        "HTTPS_PROXY": closed_port_url(),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    report = run_azure_child(env, "default", ARM)
    assert not report["ok"]
    assert "EnvironmentCredential" in report["error"]
    assert endpoint.seen == []

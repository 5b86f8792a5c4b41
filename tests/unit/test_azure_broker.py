"""The Azure broker against a scripted token endpoint: what it sends, what it records, retries,
fresh assertions, and the managed-identity endpoint's decisions."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nhi_invoke.brokers.azure.broker import AzureBroker
from nhi_invoke.brokers.azure.declaration import client_request_id
from nhi_invoke.brokers.azure.endpoint import ManagedIdentityEndpoint
from nhi_invoke.brokers.azure.plan import AzurePlan
from nhi_invoke.brokers.grants import Grant, GrantRecorder, Secret, TokenSupplier
from nhi_invoke.errors import RefusedError, TokenError, UnavailableError
from nhi_invoke.retry import RetryPolicy
from tests.scripted_server import ScriptedServer
from tests.tokens import segment, unsigned_token

FAST = RetryPolicy(attempts=3, base_seconds=0.01, cap_seconds=0.02, total_seconds=5)
CLIENT = "3f2e1d0c-9b8a-4765-a432-10fedcba9876"
TENANT = "5b0f3c1e-2d4a-4f6b-8c7d-9e0f1a2b3c4d"
ARM = "https://management.azure.com/.default"
VAULT = "https://vault.azure.net/.default"


def access_token(**claims: object) -> str:
    payload = {"oid": "obj-1", "tid": TENANT, "uti": "uti-1", "aud": "https://management.azure.com"}
    return f"{segment({'alg': 'RS256'})}.{segment(payload | claims)}.c2ln"


def granted(token: str = "", expires_in: int = 3599) -> str:
    return json.dumps(
        {"token_type": "Bearer", "expires_in": expires_in, "access_token": token or access_token()}
    )


def refused(code: int, error: str = "invalid_client", status: int = 401) -> tuple[int, str]:
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: Entra's words. Trace ID: 1 Correlation ID: 2 "
        "Timestamp: 2026-01-01 00:00:00Z",
        "error_codes": [code],
    }
    return status, json.dumps(body)


def plan(url: str, scopes: tuple[str, ...] = (ARM,)) -> AzurePlan:
    return AzurePlan(
        client_id=CLIENT,
        tenant_id=TENANT,
        audience="api://AzureADTokenExchange",
        scopes=scopes,
        cloud="AzureCloud",
        authority=url,  # the scripted server speaks http; settings only ever allow https
        ca_file=None,
        invocation_id="abc123",
        client_request_id=client_request_id("abc123"),
    )


class Tokens:
    """A token supplier handing out the given assertions in turn, noting `fresh` each time."""

    def __init__(self, *assertions: str) -> None:
        self.assertions = list(assertions)
        self.fresh: list[bool] = []

    def __call__(self, fresh: bool) -> str:
        self.fresh.append(fresh)
        return self.assertions[min(len(self.fresh), len(self.assertions)) - 1]


def assertion(seconds_left: float, sub: str = "repo:o/r:ref:refs/heads/main") -> str:
    return unsigned_token(
        now=time.time() + seconds_left - 300, aud="api://AzureADTokenExchange", sub=sub
    )


def form(server: ScriptedServer, index: int) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(server.requests[index].body.decode()))


def test_the_exchange_sends_the_assertion_and_names_the_invocation() -> None:
    records: list[Grant] = []
    token = assertion(300)
    with ScriptedServer().answer(200, granted()) as server:
        grant = AzureBroker(plan(server.url), FAST).issue(Tokens(token), records.append)
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", f"/{TENANT}/oauth2/v2.0/token")
    assert form(server, 0) == {
        "client_id": CLIENT,
        "scope": ARM,
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
    }
    assert request.headers["client-request-id"] == client_request_id("abc123")
    assert request.headers["return-client-request-id"] == "true"
    assert request.headers["x-client-SKU"] == "nhi-invoke"
    assert records == [grant]
    assert grant.environment == {}  # served by the endpoint, never a variable
    assert grant.principal == CLIENT
    assert grant.principal_id == "obj-1"
    assert grant.details["resource"] == "https://management.azure.com"
    assert grant.details["token_id"] == "uti-1"
    assert grant.fingerprint == Secret(access_token()).fingerprint


def test_a_client_request_id_is_a_guid_derived_from_the_invocation_id() -> None:
    assert client_request_id("abc123") == client_request_id("abc123")
    assert client_request_id("abc123") != client_request_id("abc124")
    assert len(client_request_id("abc123").split("-")) == 5


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried(status: int) -> None:
    with ScriptedServer().answer(status, "busy").answer(200, granted()) as server:
        broker = AzureBroker(plan(server.url), FAST)
        broker.issue(Tokens(assertion(300)), lambda g: None)
    assert len(server.requests) == 2
    assert broker.retries.retries == 1


def test_an_endpoint_that_keeps_failing_is_unavailable() -> None:
    with (
        ScriptedServer().answer(503, "busy") as server,
        pytest.raises(UnavailableError, match="failed after 3 tries: HTTP 503"),
    ):
        AzureBroker(plan(server.url), FAST).issue(Tokens(assertion(300)), lambda g: None)


def test_a_held_assertion_near_its_end_is_replaced_before_it_is_presented() -> None:
    tokens = Tokens(assertion(30), assertion(300, sub="second"))
    with ScriptedServer().answer(200, granted()) as server:
        broker = AzureBroker(plan(server.url, (ARM, VAULT)), FAST)
        broker.issue(tokens, lambda g: None)  # fetched just now: presented although short
        broker.mint(VAULT, tokens, lambda g: None)
    assert tokens.fresh == [False, True]
    assert [form(server, i)["client_assertion"] for i in (0, 1)] == tokens.assertions


def test_a_held_assertion_with_time_left_is_reused() -> None:
    tokens = Tokens(assertion(300), assertion(300, sub="second"))
    with ScriptedServer().answer(200, granted()) as server:
        broker = AzureBroker(plan(server.url, (ARM, VAULT)), FAST)
        broker.issue(tokens, lambda g: None)
        broker.mint(VAULT, tokens, lambda g: None)
    assert tokens.fresh == [False]
    assert form(server, 0)["client_assertion"] == form(server, 1)["client_assertion"]


def test_a_reused_assertion_entra_finds_expired_is_replaced_once() -> None:
    tokens = Tokens(assertion(300), assertion(300, sub="second"))
    status, body = refused(700024)
    with ScriptedServer().answer(200, granted()).answer(status, body).answer(200, granted()) as srv:
        broker = AzureBroker(plan(srv.url, (ARM, VAULT)), FAST)
        broker.issue(tokens, lambda g: None)
        broker.mint(VAULT, tokens, lambda g: None)
    assert tokens.fresh == [False, True]
    assert form(srv, 2)["client_assertion"] == tokens.assertions[1]


def test_a_fresh_assertion_entra_finds_expired_is_a_token_error() -> None:
    with (
        ScriptedServer().answer(*refused(700024)) as server,
        pytest.raises(TokenError, match="AADSTS700024"),
    ):
        AzureBroker(plan(server.url), FAST).issue(Tokens(assertion(300)), lambda g: None)
    assert len(server.requests) == 1


def test_a_refusal_names_the_subject_the_token_carried() -> None:
    token = assertion(300, sub="repo:o/r:environment:prod")
    with (
        ScriptedServer().answer(*refused(700213)) as server,
        pytest.raises(RefusedError) as caught,
    ):
        AzureBroker(plan(server.url), FAST).issue(Tokens(token), lambda g: None)
    assert "subject 'repo:o/r:environment:prod' the token carried" in caught.value.message
    assert caught.value.exit_code == 77


def test_an_answer_without_a_token_is_unavailable() -> None:
    with (
        ScriptedServer().answer(200, json.dumps({"token_type": "Bearer"})) as server,
        pytest.raises(UnavailableError, match="without a token"),
    ):
        AzureBroker(plan(server.url), FAST).issue(Tokens(assertion(300)), lambda g: None)


# -- the managed-identity endpoint --------------------------------------------------------


class Minting(AzureBroker):
    """The broker with Entra replaced: each mint makes a grant of the given lifetime."""

    def __init__(self, azure_plan: AzurePlan, lifetime: float = 3599) -> None:
        super().__init__(azure_plan, FAST)
        self.lifetime = lifetime
        self.minted: list[str] = []

    def mint(self, scope: str, tokens: TokenSupplier, record: GrantRecorder) -> Grant:
        self.minted.append(scope)
        token = Secret(f"token-{len(self.minted)}")
        grant = Grant(
            broker="azure",
            purpose="child",
            principal=CLIENT,
            principal_id="obj-1",
            session_name=None,
            access_key_id=None,
            expires_at=datetime.now(UTC) + timedelta(seconds=self.lifetime),
            fingerprint=token.fingerprint,
            hidden=(token,),
        )
        record(grant)
        return grant


class Served:
    """A CurrentGrant as the serve host gives one."""

    def __init__(self, first: Grant, margin: float = 300) -> None:
        self._first = first
        self.margin_seconds = margin
        self.recorded: list[Grant] = []

    @property
    def current(self) -> Grant:
        return self._first

    def get(self) -> Grant:
        return self._first

    def tokens(self, fresh: bool) -> str:
        return "oidc"

    def record(self, grant: Grant) -> None:
        self.recorded.append(grant)


def endpoint(
    scopes: tuple[str, ...] = (ARM,), lifetime: float = 3599
) -> tuple[ManagedIdentityEndpoint, Minting, Served]:
    broker = Minting(plan("https://login.example", scopes), lifetime)
    served = Served(broker.mint(scopes[0], lambda fresh: "oidc", lambda g: None))
    return ManagedIdentityEndpoint(broker, served), broker, served


Ask = Callable[..., tuple[int, dict[str, object]]]


def asker(found: ManagedIdentityEndpoint) -> Ask:
    def ask(header: str | None = None, **query: str) -> tuple[int, dict[str, object]]:
        presented = found.header.reveal() if header is None else header
        reply = found.handle(
            "", {"X-Identity-Header": presented}, {"api-version": "2019-08-01"} | query
        )
        return reply.status, json.loads(reply.body)

    return ask


def test_the_endpoint_serves_the_held_token_until_the_margin() -> None:
    found, broker, _served = endpoint(lifetime=3599)
    ask = asker(found)
    status, body = ask(resource="https://management.azure.com")
    assert status == 200
    assert body["access_token"] == "token-1"
    assert body["client_id"] == CLIENT
    assert body["resource"] == "https://management.azure.com"
    assert int(str(body["expires_on"])) > time.time() + 3500
    assert ask(resource="https://management.azure.com")[1]["access_token"] == "token-1"
    assert broker.minted == [ARM]  # only the first, before the command
    found.close()


def test_the_endpoint_mints_again_when_less_than_the_margin_is_left() -> None:
    found, _broker, served = endpoint(lifetime=200)  # under the 300 s margin at once
    assert asker(found)(resource="https://management.azure.com")[1]["access_token"] == "token-2"
    assert [g.fingerprint for g in served.recorded] == [Secret("token-2").fingerprint]
    found.close()


@pytest.mark.parametrize(
    ("resource", "minted"),
    [
        # The Azure CLI's name for Resource Manager: the same API, asked for as named.
        ("https://management.core.windows.net/", "https://management.core.windows.net//.default"),
        ("https://management.azure.com/", "https://management.azure.com//.default"),
    ],
)
def test_resource_managers_other_names_are_allowed_with_it(resource: str, minted: str) -> None:
    found, broker, _ = endpoint()
    assert asker(found)(resource=resource)[0] == 200
    assert broker.minted[-1] == minted
    found.close()


@pytest.mark.parametrize(
    ("query", "header", "status", "message"),
    [
        ({"resource": "https://vault.azure.net"}, None, 400, "may not get tokens for"),
        (
            {"resource": "https://management.azure.com", "client_id": "other"},
            None,
            400,
            "not 'other'",
        ),
        (
            {"resource": "https://management.azure.com", "mi_res_id": "/x"},
            None,
            400,
            "not by mi_res_id",
        ),
        (
            {"resource": "https://management.azure.com", "api-version": "2018-02-01"},
            None,
            400,
            "api-version",
        ),
        ({}, None, 400, "resource parameter is required"),
        ({"resource": "https://management.azure.com"}, "", 401, "missing or wrong"),
        ({"resource": "https://management.azure.com"}, "guess", 401, "missing or wrong"),
    ],
)
def test_the_endpoint_refuses_in_app_services_error_shape(
    query: dict[str, str], header: str | None, status: int, message: str
) -> None:
    found, broker, _ = endpoint()
    got_status, body = asker(found)(header, **query)
    assert (got_status, body["statusCode"]) == (status, status)
    assert message in str(body["message"])
    assert broker.minted == [ARM]
    found.close()


def test_the_endpoint_accepts_its_own_client_id_in_any_case() -> None:
    found, _, _ = endpoint()
    assert asker(found)(resource="https://management.azure.com", client_id=CLIENT.upper())[0] == 200
    found.close()


def test_the_cli_folder_is_the_invocations_private_one(tmp_path: Path) -> None:
    import os  # noqa: PLC0415

    from nhi_invoke.invocation.private_folder import PrivateFolder  # noqa: PLC0415

    found, _, _ = endpoint()
    assert set(found.environment("http://127.0.0.1:1/x/azure")) == {
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
    }
    assert found.secrets() == (found.header,)
    private = PrivateFolder({"RUNNER_TEMP": str(tmp_path)}, "inv")
    given = found.broker.private_configuration(lambda: private.folder("azure"), {}, True)
    folder = given["AZURE_CONFIG_DIR"]
    assert folder.startswith(str(tmp_path))  # under $RUNNER_TEMP, which the runner empties
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"
    private.remove()
    assert not os.path.exists(folder)
    found.close()

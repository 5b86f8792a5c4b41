"""The GCP broker against a scripted server: retries, refusals, and what it records."""

from __future__ import annotations

import json

import pytest

from nhi_invoke.brokers.gcp.broker import GcpBroker
from nhi_invoke.brokers.gcp.plan import GcpPlan
from nhi_invoke.brokers.grants import Grant
from nhi_invoke.errors import ConfigError, RefusedError, UnavailableError
from nhi_invoke.retry import RetryPolicy
from tests.scripted_server import ScriptedServer
from tests.tokens import unsigned_token as _token

FAST = RetryPolicy(attempts=3, base_seconds=0.01, cap_seconds=0.02, total_seconds=5)
PROVIDER = "projects/42/locations/global/workloadIdentityPools/ci-pool/providers/github"
ACCOUNT = "deployer@proj.iam.gserviceaccount.com"
FEDERATED = json.dumps(
    {
        "access_token": "fed-token",
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": 3000,
    }
)
ACCESS = json.dumps({"accessToken": "ya29.access", "expireTime": "2030-01-01T00:10:00Z"})


def _plan(url: str, account: str | None = ACCOUNT) -> GcpPlan:
    return GcpPlan(
        provider=PROVIDER,
        audience=f"https://iam.googleapis.com/{PROVIDER}",
        service_account=account,
        scopes=("https://www.googleapis.com/auth/x",),
        lifetime_seconds=600,
        project=None,
        sts_endpoint=url,
        iamcredentials_endpoint=url,
        request_reason="nhi-invoke invocation abc",
    )


def _subject(fresh: bool) -> str:
    return _token(sub="repo:o/r:ref:refs/heads/main", repository="o/r")


def test_exchange_then_impersonation_records_both_tokens() -> None:
    granted: list[Grant] = []
    with ScriptedServer().answer(200, FEDERATED).answer(200, ACCESS) as server:
        grant = GcpBroker(_plan(server.url), FAST).issue(_subject, granted.append)
    assert [g.purpose for g in granted] == ["entry", "child"]
    assert granted[0].principal.endswith(
        "/workloadIdentityPools/ci-pool/subject/repo:o/r:ref:refs/heads/main"
    )
    assert granted[0].environment == {}  # the federated token never reaches the child
    assert [s.reveal() for s in granted[0].secrets] == ["fed-token"]
    assert grant.child_environment() == {
        "CLOUDSDK_AUTH_ACCESS_TOKEN": "ya29.access",
        "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.access",
    }
    assert all(
        r.headers["X-Goog-Request-Reason"] == "nhi-invoke invocation abc" for r in server.requests
    )
    assert len(server.requests) == 2  # one exchange, one generateAccessToken: nothing twice


def test_without_a_service_account_the_federated_token_is_handed_over() -> None:
    with ScriptedServer().answer(200, FEDERATED) as server:
        grant = GcpBroker(_plan(server.url, account=None), FAST).issue(_subject, lambda g: None)
    assert grant.purpose == "child"
    assert grant.child_environment()["CLOUDSDK_AUTH_ACCESS_TOKEN"] == "fed-token"
    assert "scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fx" in server.requests[0].body.decode()


def test_server_errors_are_retried_then_succeed() -> None:
    with ScriptedServer().answer(503, "busy").answer(200, FEDERATED).answer(200, ACCESS) as srv:
        broker = GcpBroker(_plan(srv.url), FAST)
        broker.issue(_subject, lambda g: None)
    assert broker.retries.retries == 1


def test_a_rejected_subject_token_is_refused_with_the_claims() -> None:
    body = json.dumps(
        {"error": "invalid_grant", "error_description": "rejected by the attribute condition"}
    )
    with ScriptedServer().answer(400, body) as server, pytest.raises(RefusedError) as caught:
        GcpBroker(_plan(server.url), FAST).issue(_subject, lambda g: None)
    message = str(caught.value)
    assert "attribute condition" in message
    assert "sub='repo:o/r:ref:refs/heads/main'" in message
    assert len(server.requests) == 1


def test_permission_denied_names_the_binding_to_add() -> None:
    denied = json.dumps(
        {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "Permission denied"}}
    )
    with (
        ScriptedServer().answer(200, FEDERATED).answer(403, denied) as server,
        pytest.raises(RefusedError, match=r"roles/iam\.workloadIdentityUser"),
    ):
        GcpBroker(_plan(server.url), FAST).issue(_subject, lambda g: None)


def test_an_invalid_argument_is_a_configuration_error() -> None:
    invalid = json.dumps(
        {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "lifetime"}}
    )
    with (
        ScriptedServer().answer(200, FEDERATED).answer(400, invalid) as server,
        pytest.raises(ConfigError, match=r"--gcp-lifetime"),
    ):
        GcpBroker(_plan(server.url), FAST).issue(_subject, lambda g: None)


def test_an_unreachable_sts_is_unavailable_after_retries() -> None:
    with (
        ScriptedServer().answer(500, "down") as server,
        pytest.raises(UnavailableError, match="after 3 tries"),
    ):
        GcpBroker(_plan(server.url), FAST).issue(_subject, lambda g: None)

"""The lean GCP client sends what google-auth sends.

google-auth's `identity_pool` and `impersonated_credentials` are the reference: the same input
goes through them (on google-auth's own `requests` transport, the reason header set on its
session) and through `nhi_invoke.brokers.gcp.exchange` (on the HTTP seam), each against a
recording server on 127.0.0.1, and the requests that arrive must be the same: method, path,
body (the form byte for byte, the JSON as a value), and every header but the ones that name
the client or the connection. The tokens and expiries read from the answers agree too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.auth import identity_pool, impersonated_credentials
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials as BearerToken

from nhi_invoke.brokers.gcp import exchange
from nhi_invoke.brokers.gcp.exchange import GcpAnswer
from nhi_invoke.retry import Retryable
from tests.scripted_server import Recorded, ScriptedServer
from tests.tokens import unsigned_token

PROVIDER = "projects/42/locations/global/workloadIdentityPools/ci-pool/providers/github"
AUDIENCE = f"//iam.googleapis.com/{PROVIDER}"
ACCOUNT = "deployer@proj.iam.gserviceaccount.com"
REASON = "nhi-invoke invocation 0b6f3c2e"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
FEDERATED = json.dumps(
    {
        "access_token": "fed-token",
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": 3000,
    }
)
ACCESS = json.dumps({"accessToken": "ya29.access", "expireTime": "2030-01-01T00:10:00Z"})
# Headers that name the client or manage the connection: they differ by design.
CLIENT_HEADERS = {
    "user-agent",
    "x-goog-api-client",
    "accept",
    "accept-encoding",
    "connection",
    "host",
}


def _shape(recorded: Recorded) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in recorded.headers.items()}
    content_type = headers.get("content-type", "")
    body: Any = recorded.body
    if content_type == "application/json":
        body = json.loads(recorded.body)
    return {
        "method": recorded.method,
        "path": recorded.path,
        "body": body,
        "headers": {k: v for k, v in headers.items() if k not in CLIENT_HEADERS},
    }


def _google_auth(url: str, subject: str, scopes: list[str], account: str | None) -> list[Any]:
    """The reference: the two calls made by google-auth's own credentials."""
    session = requests.Session()
    session.headers["X-Goog-Request-Reason"] = REASON
    request = Request(session=session)

    class Subject(identity_pool.SubjectTokenSupplier):
        def get_subject_token(self, context: Any, request: Any) -> str:
            return subject

    federated = identity_pool.Credentials(
        audience=AUDIENCE,
        subject_token_type="urn:ietf:params:oauth:token-type:jwt",
        token_url=f"{url}/v1/token",
        subject_token_supplier=Subject(),
        scopes=[CLOUD_PLATFORM] if account else scopes,
    )
    federated.refresh(request)
    minted = [(federated.token, federated.expiry.replace(tzinfo=UTC))]
    if account:
        impersonated = impersonated_credentials.Credentials(
            source_credentials=BearerToken(token=federated.token),
            target_principal=account,
            target_scopes=scopes,
            lifetime=900,
            delegates=[],
            iam_endpoint_override=(
                f"{url}/v1/projects/-/serviceAccounts/{account}:generateAccessToken"
            ),
        )
        impersonated.refresh(request)
        minted.append((impersonated.token, impersonated.expiry.replace(tzinfo=UTC)))
    return minted


def _lean(url: str, subject: str, scopes: list[str], account: str | None) -> list[Any]:
    federated = exchange.exchange_token(
        url, AUDIENCE, subject, (CLOUD_PLATFORM,) if account else tuple(scopes), REASON
    )
    minted = [tuple(federated)]
    if account:
        access = exchange.generate_access_token(
            url, account, federated.token, tuple(scopes), 900, REASON
        )
        minted.append(tuple(access))
    return minted


@pytest.mark.parametrize(
    ("scopes", "account"),
    [
        ([CLOUD_PLATFORM], ACCOUNT),
        (["https://www.googleapis.com/auth/devstorage.read_only", "openid"], ACCOUNT),
        (["https://www.googleapis.com/auth/bigquery"], None),  # the federated token handed over
    ],
)
def test_the_lean_client_sends_what_google_auth_sends(
    scopes: list[str], account: str | None
) -> None:
    subject = unsigned_token(sub="repo:o/r:ref:refs/heads/main", repository="o/r")
    with ScriptedServer().answer(200, FEDERATED).answer(200, ACCESS) as reference:
        expected = _google_auth(reference.url, subject, scopes, account)
    with ScriptedServer().answer(200, FEDERATED).answer(200, ACCESS) as lean:
        got = _lean(lean.url, subject, scopes, account)
    assert len(lean.requests) == len(reference.requests) == (2 if account else 1)
    for ours, theirs in zip(lean.requests, reference.requests, strict=True):
        assert _shape(ours) == _shape(theirs)
    # The bearer of generateAccessToken is the federated token, and nothing else leaks in.
    if account:
        assert _shape(lean.requests[1])["headers"]["authorization"] == "Bearer fed-token"
    assert [token for token, _ in got] == [token for token, _ in expected]
    # STS answers a lifetime: both count it from the moment they asked.
    assert abs(got[0][1] - expected[0][1]) < timedelta(seconds=5)
    if account:
        assert got[1][1] == expected[1][1] == datetime(2030, 1, 1, 0, 10, tzinfo=UTC)


def test_an_error_answer_carries_its_status_and_body() -> None:
    body = json.dumps({"error": "invalid_grant", "error_description": "audience mismatch"})
    with ScriptedServer().answer(400, body) as server, pytest.raises(GcpAnswer) as caught:
        exchange.exchange_token(server.url, AUDIENCE, "t", (CLOUD_PLATFORM,), REASON)
    assert (caught.value.status, caught.value.body) == (400, body)


@pytest.mark.parametrize(
    "answer",
    [
        (429, "slow down"),
        (503, "busy"),
        (200, "not json"),
        (200, json.dumps({"access_token": "t"})),  # no lifetime
        (200, json.dumps({"accessToken": "t", "expireTime": "soon"})),
    ],
)
def test_throttling_outages_and_malformed_answers_are_worth_a_retry(
    answer: tuple[int, str],
) -> None:
    def call(url: str) -> object:
        if "accessToken" in answer[1]:
            return exchange.generate_access_token(url, ACCOUNT, "fed", (CLOUD_PLATFORM,), 60, "r")
        return exchange.exchange_token(url, AUDIENCE, "t", (CLOUD_PLATFORM,), REASON)

    with ScriptedServer().answer(*answer) as server, pytest.raises(Retryable):
        call(server.url)


def test_expires_in_as_a_string_is_read_as_google_auth_reads_it() -> None:
    answer = json.dumps({"access_token": "fed", "expires_in": "3599"})
    with ScriptedServer().answer(200, answer) as server:
        before = datetime.now(UTC)
        minted = exchange.exchange_token(server.url, AUDIENCE, "t", (CLOUD_PLATFORM,), REASON)
    assert minted.token == "fed"
    assert before + timedelta(seconds=3599) <= minted.expires_at

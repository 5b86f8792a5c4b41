"""The --serve metadata server answers what gcloud and the client libraries ask, with
`Metadata-Flavor: Google` on every answer."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from nhi_invoke.brokers.gcp.metadata import PREFIX, MetadataServer
from nhi_invoke.brokers.gcp.plan import GcpPlan
from nhi_invoke.brokers.grants import CHILD, Grant, Secret

PROVIDER = "projects/42/locations/global/workloadIdentityPools/ci-pool/providers/github"
ACCOUNT = "deployer@proj-1.iam.gserviceaccount.com"
FLAVOR = {"Metadata-Flavor": "Google"}


def _plan(account: str | None = ACCOUNT, project: str | None = None) -> GcpPlan:
    return GcpPlan(
        provider=PROVIDER,
        audience="a",
        service_account=account,
        scopes=("https://www.googleapis.com/auth/cloud-platform", "openid"),
        lifetime_seconds=600,
        project=project,
        sts_endpoint="http://x",
        iamcredentials_endpoint="http://x",
        request_reason="r",
    )


class _Current:
    def __init__(self, principal: str) -> None:
        self.grant = Grant(
            broker="gcp",
            purpose=CHILD,
            principal=principal,
            principal_id=None,
            session_name=None,
            access_key_id=None,
            expires_at=datetime.now(UTC) + timedelta(seconds=600),
            fingerprint="sha256:x",
            environment={"CLOUDSDK_AUTH_ACCESS_TOKEN": Secret("ya29.served")},
        )

    @property
    def current(self) -> Grant:
        return self.grant

    def get(self) -> Grant:
        return self.grant


def _server(plan: GcpPlan | None = None) -> MetadataServer:
    plan = plan or _plan()
    return MetadataServer(_Current(plan.service_account or "principal://x"), plan)


PATHS = [
    "",
    PREFIX + "project/project-id",
    PREFIX + "project/numeric-project-id",
    PREFIX + "instance/service-accounts/default/token",
    PREFIX + "instance/service-accounts/default/identity",
    PREFIX + "instance/zone",
    "/elsewhere",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("headers", [FLAVOR, {}])
def test_every_answer_carries_metadata_flavor(path: str, headers: dict[str, str]) -> None:
    reply = _server().handle(path, headers, {})
    assert reply.headers.get("Metadata-Flavor") == "Google"
    if not headers:
        assert reply.status in (403, 404)


@pytest.mark.parametrize(
    ("account", "project", "served"),
    [
        (ACCOUNT, None, "proj-1"),
        (ACCOUNT, "chosen", "chosen"),
        ("my-app@appspot.gserviceaccount.com", None, "my-app"),
        ("123-compute@developer.gserviceaccount.com", None, None),
        (None, None, None),
    ],
)
def test_the_project_is_given_else_the_service_accounts(
    account: str | None, project: str | None, served: str | None
) -> None:
    reply = _server(_plan(account, project)).handle(PREFIX + "project/project-id", FLAVOR, {})
    assert (reply.status, reply.body) == ((200, served) if served else (404, "not found"))
    number = _server(_plan(account, project)).handle(
        PREFIX + "project/numeric-project-id", FLAVOR, {}
    )
    assert (number.status, number.body) == (200, "42")  # gcloud wants digits here


def test_the_accounts_items_by_alias_and_by_email() -> None:
    server = _server()
    for alias in ("default", ACCOUNT):
        base = f"{PREFIX}instance/service-accounts/{alias}/"
        assert server.handle(base + "email", FLAVOR, {}).body == ACCOUNT
        assert server.handle(base + "scopes", FLAVOR, {}).body.splitlines() == list(_plan().scopes)
        token = json.loads(server.handle(base + "token", FLAVOR, {}).body)
        assert token["access_token"] == "ya29.served"
        assert 590 <= token["expires_in"] <= 600
        listing = json.loads(server.handle(base, FLAVOR, {}).body)
        assert listing == {"aliases": ["default"], "email": ACCOUNT, "scopes": list(_plan().scopes)}
    accounts = server.handle(PREFIX + "instance/service-accounts/", FLAVOR, {})
    assert accounts.body.splitlines() == ["default/", f"{ACCOUNT}/"]


def test_identity_tokens_are_refused_with_a_reason() -> None:
    reply = _server().handle(PREFIX + "instance/service-accounts/default/identity", FLAVOR, {})
    assert reply.status == 404
    assert "serves no identity tokens" in reply.body


def test_the_universe_domain() -> None:
    assert (
        _server().handle(PREFIX + "universe/universe-domain", FLAVOR, {}).body == "googleapis.com"
    )


def test_a_served_project_needs_no_project_option() -> None:
    plan = dataclasses.replace(_plan(), project=None)
    assert plan.served_project == "proj-1"

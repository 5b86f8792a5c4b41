"""The child's environment: this invocation's identity in, every other identity out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nhi_invoke.brokers.aws.declaration import DECLARATION as AWS
from nhi_invoke.brokers.gcp.declaration import DECLARATION as GCP
from nhi_invoke.brokers.grants import Grant, Secret
from nhi_invoke.brokers.interface import BrokerPlan, PlanContext
from nhi_invoke.ci.interface import LOCAL
from nhi_invoke.invocation import child
from nhi_invoke.settings import by_name
from nhi_invoke.settings.option import OptionValues

CONTEXT = PlanContext(invocation_id="inv", step_id="deploy", ci=LOCAL)


def _plan(**given: object) -> BrokerPlan:
    """A built-in broker's plan, from what a user would pass."""
    values = OptionValues(by_name({}), given, {}, {}, "nhi-invoke.toml")
    for declaration in (AWS, GCP):
        settings = declaration.settings(values, {})
        if settings is not None:
            return declaration.plan(settings, CONTEXT)
    raise AssertionError("no broker asked for")


AWS_PLAN = _plan(aws_role_arn="arn:aws:iam::123456789012:role/r", aws_region="eu-west-1")

GRANT = Grant(
    broker="aws",
    purpose="child",
    principal="arn:aws:sts::1:assumed-role/r/s",
    principal_id="A:s",
    session_name="s",
    access_key_id="ASIAX",
    expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    fingerprint="sha256:00",
    environment={
        "AWS_ACCESS_KEY_ID": Secret("ASIAX"),
        "AWS_SECRET_ACCESS_KEY": Secret("sk"),
        "AWS_SESSION_TOKEN": Secret("st"),
    },
)
INHERITED = {
    "PATH": "/bin",
    "AWS_PROFILE": "p",
    "AWS_DEFAULT_PROFILE": "p",
    "AWS_ACCESS_KEY_ID": "old",
    "AWS_SECRET_ACCESS_KEY": "old",
    "AWS_SECURITY_TOKEN": "old",
    "AWS_ROLE_ARN": "r",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/x",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t",
    "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:1",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "rt",
}


def _build(token_variables: tuple[str, ...]) -> dict[str, str]:
    return child.build(
        INHERITED,
        {"aws": [GRANT]},
        [AWS_PLAN],
        invocation_id="inv",
        step_id="deploy",
        token_variables=token_variables,
    )


def test_injects_this_invocation_and_strips_other_identities() -> None:
    env = _build(("ACTIONS_ID_TOKEN_REQUEST_TOKEN",))
    assert env["AWS_ACCESS_KEY_ID"] == "ASIAX"
    assert env["AWS_SECRET_ACCESS_KEY"] == "sk"
    assert env["AWS_CREDENTIAL_EXPIRATION"] == "2030-01-01T00:00:00Z"
    assert env["AWS_SDK_UA_APP_ID"] == "nhi/inv"
    assert env["NHI_INVOKE_ACTIVE"] == "inv"
    for gone in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ):
        assert gone not in env
    assert env["AWS_ENDPOINT_URL_STS"] == "http://127.0.0.1:1"  # endpoints stay for the child


def test_token_variables_stay_when_not_listed() -> None:
    assert _build(())["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] == "rt"


def test_removed_names_lists_names_only() -> None:
    names = child.removed_names(INHERITED, [AWS_PLAN], ("ACTIONS_ID_TOKEN_REQUEST_TOKEN",))
    assert "AWS_PROFILE" in names
    assert "PATH" not in names


GCP_GRANT = Grant(
    broker="gcp",
    purpose="child",
    principal="deployer@p.iam.gserviceaccount.com",
    principal_id=None,
    session_name=None,
    access_key_id=None,
    expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    fingerprint="sha256:01",
    environment={
        "CLOUDSDK_AUTH_ACCESS_TOKEN": Secret("ya29"),
        "GOOGLE_OAUTH_ACCESS_TOKEN": Secret("ya29"),
    },
)


def test_gcp_credentials_replace_inherited_google_identities() -> None:
    inherited = INHERITED | {
        "GOOGLE_APPLICATION_CREDENTIALS": "/key.json",
        "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE": "/key.json",
        "GOOGLE_CREDENTIALS": "{}",
    }
    gcp_plan = _plan(
        gcp_provider="projects/42/locations/global/workloadIdentityPools/ci-pool/providers/github",
        gcp_project="my-project",
    )
    env = child.build(
        inherited,
        {"gcp": [GCP_GRANT]},
        [gcp_plan],
        invocation_id="inv",
        step_id="s",
        token_variables=(),
    )
    assert env["CLOUDSDK_AUTH_ACCESS_TOKEN"] == env["GOOGLE_OAUTH_ACCESS_TOKEN"] == "ya29"
    assert env["GOOGLE_CLOUD_PROJECT"] == env["CLOUDSDK_CORE_PROJECT"] == "my-project"
    for gone in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
        "GOOGLE_CREDENTIALS",
    ):
        assert gone not in env
    # A GCP-only invocation leaves the AWS variables alone: it issued no AWS identity.
    assert env["AWS_PROFILE"] == "p"
    assert "AWS_SDK_UA_APP_ID" not in env


def test_served_credentials_replace_static_ones_and_keep_the_region() -> None:
    env = child.build(
        INHERITED,
        {"aws": [GRANT]},
        [AWS_PLAN],
        invocation_id="inv",
        step_id="deploy",
        token_variables=(),
        served={"aws": {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/x/aws"}},
    )
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:1/x/aws"
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "AWS_CREDENTIAL_EXPIRATION" not in env
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" not in env  # the inherited one is gone


def test_a_broker_not_served_gets_its_credentials_while_another_is_served() -> None:
    # Without --serve, a broker whose plan is always served (its SDKs read only an
    # endpoint) is served; the others hand over their credentials as usual.
    env = child.build(
        INHERITED,
        {"aws": [GRANT]},
        [AWS_PLAN],
        invocation_id="inv",
        step_id="deploy",
        token_variables=(),
        served={"other": {"OTHER_ENDPOINT": "http://127.0.0.1:1/x/other"}},
    )
    assert env["AWS_ACCESS_KEY_ID"] == "ASIAX"
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in env
    assert env["AWS_SDK_UA_APP_ID"] == "nhi/inv"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}),
        ({"NO_PROXY": "corp.example"}, {"NO_PROXY": "corp.example,127.0.0.1,localhost"}),
        (
            {"no_proxy": " a, localhost", "NO_PROXY": "b"},
            {"no_proxy": "a,localhost,127.0.0.1", "NO_PROXY": "b,127.0.0.1,localhost"},
        ),
        ({"NO_PROXY": "*"}, {"NO_PROXY": "*"}),
    ],
)
def test_served_children_reach_loopback_without_a_proxy(
    given: dict[str, str], expected: dict[str, str]
) -> None:
    env = dict(given)
    child.exempt_loopback(env)
    assert env == expected

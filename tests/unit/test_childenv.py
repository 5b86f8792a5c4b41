"""The child's environment: this invocation's identity in, every other identity out."""

from __future__ import annotations

from datetime import UTC, datetime

from nhi_invoke import childenv
from nhi_invoke.clouds.interface import Grant, Secret

GRANT = Grant(
    cloud="aws",
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
    return childenv.build(
        INHERITED,
        [GRANT],
        invocation_id="inv",
        step_id="deploy",
        aws_region="eu-west-1",
        gcp_project=None,
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
    names = childenv.removed_names(INHERITED, ["aws"], ("ACTIONS_ID_TOKEN_REQUEST_TOKEN",))
    assert "AWS_PROFILE" in names
    assert "PATH" not in names


GCP_GRANT = Grant(
    cloud="gcp",
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
    env = childenv.build(
        inherited,
        [GCP_GRANT],
        invocation_id="inv",
        step_id="s",
        aws_region=None,
        gcp_project="my-project",
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

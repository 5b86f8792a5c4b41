"""The lean STS client sends what botocore's own client sends for the same input."""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import botocore.awsrequest
import botocore.session

from nhi_invoke.brokers.aws.sts_query import (
    StsCredentials,
    assume_role,
    assume_role_fields,
    assume_role_with_web_identity,
)
from nhi_invoke.brokers.grants import Secret
from tests.scripted_server import ScriptedServer
from tests.sts_answers import OK

SIGNER = StsCredentials(
    "ASIAEXAMPLESIGNER001",
    Secret("signer-secret"),
    Secret("signer-token"),
    datetime(2030, 1, 1, tzinfo=UTC),
    "arn",
    "AROA:s",
)
ASSUME_ROLE_OK = OK.replace("AssumeRoleWithWebIdentity", "AssumeRole")


def _botocore_request(
    operation: str, credentials: dict[str, str], **params: Any
) -> botocore.awsrequest.AWSPreparedRequest:
    """The request botocore's STS client would send, caught before it leaves."""
    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    client = session.create_client(
        "sts", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9", **credentials
    )
    sent: list[botocore.awsrequest.AWSPreparedRequest] = []

    def capture(request: botocore.awsrequest.AWSPreparedRequest, **_: Any) -> Any:
        sent.append(request)
        body = (ASSUME_ROLE_OK if operation == "assume_role" else OK).encode()
        return botocore.awsrequest.AWSResponse(request.url, 200, {}, _Raw(body))

    client.meta.events.register("before-send", capture)
    getattr(client, operation)(**params)
    return sent[0]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _form(body: bytes | str | None) -> dict[str, list[str]]:
    text = body.decode() if isinstance(body, bytes) else (body or "")
    return urllib.parse.parse_qs(text)


def test_web_identity_body_is_botocores() -> None:
    with ScriptedServer().answer(200, OK) as sts:
        assume_role_with_web_identity(
            sts.url,
            role_arn="arn:aws:iam::123456789012:role/r",
            session_name="s.1-1.abc",
            web_identity_token="a.b.c",
            duration_seconds=900,
            policy='{"Statement":[]}',
            policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        )
    ours = _form(sts.requests[0].body)
    theirs = _form(
        _botocore_request(
            "assume_role_with_web_identity",
            {"aws_access_key_id": "x", "aws_secret_access_key": "y"},
            RoleArn="arn:aws:iam::123456789012:role/r",
            RoleSessionName="s.1-1.abc",
            WebIdentityToken="a.b.c",
            DurationSeconds=900,
            Policy='{"Statement":[]}',
            PolicyArns=[{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
        ).body
    )
    assert ours == theirs


def test_signed_assume_role_matches_botocores_request() -> None:
    tags = (("nhi:step", "deploy web"), ("team", "web"))
    fields = assume_role_fields(
        role_arn="arn:aws:iam::123456789012:role/t",
        session_name="s.1-1.abc",
        duration_seconds=1800,
        tags=tags,
        transitive_tag_keys=("nhi:step",),
        source_identity="abc",
        policy='{"Statement":[]}',
        policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
    )
    with ScriptedServer().answer(200, ASSUME_ROLE_OK) as sts:
        credentials = assume_role(sts.url, "eu-west-1", SIGNER, fields)
    assert credentials.access_key_id == "ASIAEXAMPLEEXAMPLE01"
    ours = sts.requests[0]
    theirs = _botocore_request(
        "assume_role",
        {
            "aws_access_key_id": SIGNER.access_key_id,
            "aws_secret_access_key": "signer-secret",
            "aws_session_token": "signer-token",
        },
        RoleArn="arn:aws:iam::123456789012:role/t",
        RoleSessionName="s.1-1.abc",
        DurationSeconds=1800,
        Tags=[{"Key": k, "Value": v} for k, v in tags],
        TransitiveTagKeys=["nhi:step"],
        SourceIdentity="abc",
        Policy='{"Statement":[]}',
        PolicyArns=[{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
    )
    assert _form(ours.body) == _form(theirs.body)
    assert ours.headers["X-Amz-Security-Token"] == _text(theirs.headers["X-Amz-Security-Token"])
    scope = re.compile(
        r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([^,]+), Signature=[0-9a-f]{64}"
    )
    ours_auth = scope.match(ours.headers["Authorization"].removeprefix("AWS4-HMAC-SHA256 "))
    theirs_auth = scope.match(
        theirs.headers["Authorization"].decode().removeprefix("AWS4-HMAC-SHA256 ")
        if isinstance(theirs.headers["Authorization"], bytes)
        else theirs.headers["Authorization"].removeprefix("AWS4-HMAC-SHA256 ")
    )
    assert ours_auth is not None
    assert theirs_auth is not None
    # Same key, region, service; the signed headers include everything botocore signs.
    assert (
        ours_auth.groups()[:3]
        == theirs_auth.groups()[:3]
        == (SIGNER.access_key_id, "eu-west-1", "sts")
    )
    assert set(theirs_auth.group(4).split(";")) <= set(ours_auth.group(4).split(";"))

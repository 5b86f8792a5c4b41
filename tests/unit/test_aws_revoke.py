"""Per-session deny policies: names IAM accepts, pruning by expiry, the size limit."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest

from nhi_invoke.brokers.aws import botocore_clients
from nhi_invoke.brokers.aws.plan import role_name
from nhi_invoke.brokers.aws.revoke import (
    RevocationRefused,
    SessionRevoker,
    expiry_of,
    policy_document,
    policy_name,
)
from nhi_invoke.brokers.aws.sts_query import StsCredentials
from nhi_invoke.brokers.grants import Secret
from tests.scripted_server import ScriptedServer

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NS = "https://iam.amazonaws.com/doc/2010-05-08/"
SESSION = "AROAEXAMPLEROLEID:deploy.1-1.abcdefabcdef"


def _listing(*names: str) -> str:
    members = "".join(f"<member>{n}</member>" for n in names)
    return (
        f'<ListRolePoliciesResponse xmlns="{NS}"><ListRolePoliciesResult><PolicyNames>'
        f"{members}</PolicyNames><IsTruncated>false</IsTruncated></ListRolePoliciesResult>"
        "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
        "</ListRolePoliciesResponse>"
    )


def _ok(action: str) -> str:
    return (
        f'<{action}Response xmlns="{NS}"><ResponseMetadata><RequestId>1</RequestId>'
        f"</ResponseMetadata></{action}Response>"
    )


def _error(code: str) -> str:
    return (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{code} happened</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    )


def _revoker(url: str) -> SessionRevoker:
    creds = StsCredentials("ASIAX", Secret("s"), Secret("t"), NOW, "arn", "id")
    iam = botocore_clients.client("iam", region="us-east-1", endpoint=url, credentials=creds)
    return SessionRevoker(iam, "arn:aws:iam::123456789012:role/ci/deploy", lambda: NOW)


def _actions(server: ScriptedServer) -> list[str]:
    return [urllib.parse.parse_qs(r.body.decode())["Action"][0] for r in server.requests]


def test_policy_names_follow_iam_rules_and_carry_the_expiry() -> None:
    expires = NOW + timedelta(minutes=15)
    name = policy_name(SESSION, expires)
    assert re.fullmatch(r"[\w+=,.@-]{1,128}", name)
    assert expiry_of(name) == expires
    assert policy_name(SESSION, expires) == name
    assert policy_name(SESSION + "x", expires) != name
    assert expiry_of("my-own-policy") is None
    assert expiry_of("nhi-revoked-garbage") is None


def test_the_document_denies_everything_to_one_session_only() -> None:
    (statement,) = json.loads(policy_document(SESSION))["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == statement["Resource"] == "*"
    assert statement["Condition"] == {"StringEquals": {"aws:userid": SESSION}}


def test_role_paths_are_not_part_of_the_role_name() -> None:
    assert role_name("arn:aws:iam::123456789012:role/ci/deploy") == "deploy"


def test_revoke_prunes_expired_policies_and_keeps_live_and_foreign_ones() -> None:
    expired = policy_name("AROA:old", NOW - timedelta(minutes=1))
    live = policy_name("AROA:live", NOW + timedelta(minutes=1))
    with (
        ScriptedServer()
        .answer(200, _listing(expired, live, "team-policy"))
        .answer(200, _ok("DeleteRolePolicy"))
        .answer(200, _ok("PutRolePolicy"))
    ) as iam:
        result = _revoker(iam.url).revoke(SESSION, NOW + timedelta(minutes=15))
    assert result.pruned == [expired]
    assert _actions(iam) == ["ListRolePolicies", "DeleteRolePolicy", "PutRolePolicy"]
    put = urllib.parse.parse_qs(iam.requests[-1].body.decode())
    assert put["RoleName"] == ["deploy"]
    assert put["PolicyName"] == [result.policy_name]
    assert SESSION in put["PolicyDocument"][0]


def test_on_the_size_limit_it_prunes_again_and_retries_once() -> None:
    expired = policy_name("AROA:old", NOW - timedelta(seconds=1))
    with (
        ScriptedServer()
        .answer(200, _listing())
        .answer(409, _error("LimitExceeded"))
        .answer(200, _listing(expired))
        .answer(200, _ok("DeleteRolePolicy"))
        .answer(200, _ok("PutRolePolicy"))
    ) as iam:
        result = _revoker(iam.url).revoke(SESSION, NOW + timedelta(minutes=15))
    assert _actions(iam) == [
        "ListRolePolicies",
        "PutRolePolicy",
        "ListRolePolicies",
        "DeleteRolePolicy",
        "PutRolePolicy",
    ]
    assert result.pruned == [expired]


def test_a_policy_pruned_by_another_step_meanwhile_is_fine() -> None:
    expired = policy_name("AROA:old", NOW - timedelta(minutes=1))
    with (
        ScriptedServer()
        .answer(200, _listing(expired))
        .answer(404, _error("NoSuchEntity"))
        .answer(200, _ok("PutRolePolicy"))
    ) as iam:
        result = _revoker(iam.url).revoke(SESSION, NOW + timedelta(minutes=15))
    assert _actions(iam) == ["ListRolePolicies", "DeleteRolePolicy", "PutRolePolicy"]
    assert result.pruned == [expired]  # gone either way: counted, and the deny still put


def test_access_denied_is_reported() -> None:
    with (
        ScriptedServer().answer(403, _error("AccessDenied")) as iam,
        pytest.raises(RevocationRefused, match="AccessDenied"),
    ):
        _revoker(iam.url).revoke(SESSION, NOW + timedelta(minutes=15))

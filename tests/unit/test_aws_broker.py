"""The AWS broker against a scripted STS: retries, fresh tokens, refusals, chaining order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nhi_invoke.brokers.aws.broker import AwsBroker
from nhi_invoke.brokers.aws.plan import AwsPlan
from nhi_invoke.brokers.grants import Grant
from nhi_invoke.errors import ConfigError, RefusedError, UnavailableError
from nhi_invoke.retry import RetryPolicy
from tests.scripted_server import ScriptedServer
from tests.sts_answers import OK
from tests.sts_answers import error as _error
from tests.tokens import unsigned_token as _token

FAST = RetryPolicy(attempts=3, base_seconds=0.01, cap_seconds=0.02, total_seconds=5)
ROLE = "arn:aws:iam::123456789012:role/deploy"


def _plan(endpoint: str) -> AwsPlan:
    return AwsPlan(
        role_arn=ROLE,
        entry_role_arn=None,
        region="us-east-1",
        sts_endpoint=endpoint,
        audience="sts.amazonaws.com",
        session_name="s",
        duration_seconds=900,
        entry_duration_seconds=900,
        tags=(),
        transitive_tag_keys=(),
        source_identity=None,
        session_policy=None,
        policy_arns=(),
    )


class Tokens:
    """A token supplier that counts how often, and how freshly, it was asked."""

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def __call__(self, fresh: bool) -> str:
        self.calls.append(fresh)
        return _token(sub="repo:o/r:ref:refs/heads/main", repository="o/r")


def test_single_hop_sends_the_request_sts_expects() -> None:
    granted: list[Grant] = []
    with ScriptedServer().answer(200, OK) as sts:
        grant = AwsBroker(_plan(sts.url), FAST).issue(Tokens(), granted.append)
    body = sts.requests[0].body.decode()
    for field in (
        "Action=AssumeRoleWithWebIdentity",
        "RoleSessionName=s",
        "DurationSeconds=900",
        "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy",
    ):
        assert field in body
    assert granted == [grant]
    assert grant.expires_at == datetime(2030, 1, 1, 0, 15, tzinfo=UTC)
    assert grant.child_environment()["AWS_SESSION_TOKEN"] == "session-token"
    assert "session-token" not in repr(grant)


def test_throttling_is_retried() -> None:
    with ScriptedServer().answer(400, _error("Throttling")).answer(200, OK) as sts:
        broker = AwsBroker(_plan(sts.url), FAST)
        broker.issue(Tokens(), lambda g: None)
    assert broker.retries.retries == 1


def test_an_invalid_token_is_refetched_once() -> None:
    tokens = Tokens()
    with ScriptedServer().answer(400, _error("InvalidIdentityToken")).answer(200, OK) as sts:
        AwsBroker(_plan(sts.url), FAST).issue(tokens, lambda g: None)
    assert tokens.calls == [False, True]


def test_a_persistently_invalid_token_is_refused_after_one_refetch() -> None:
    tokens = Tokens()
    with (
        ScriptedServer().answer(400, _error("InvalidIdentityToken", "No OpenIDConnect")) as sts,
        pytest.raises(RefusedError, match="No OpenIDConnect"),
    ):
        AwsBroker(_plan(sts.url), FAST).issue(tokens, lambda g: None)
    assert tokens.calls == [False, True]


def test_access_denied_is_refused_at_once_with_the_claims() -> None:
    with (
        ScriptedServer().answer(403, _error("AccessDenied", "Not authorized")) as sts,
        pytest.raises(RefusedError) as caught,
    ):
        AwsBroker(_plan(sts.url), FAST).issue(Tokens(), lambda g: None)
    assert len(sts.requests) == 1
    message = caught.value.one_line()
    assert "sub='repo:o/r:ref:refs/heads/main'" in message
    assert ROLE in message
    assert "trust policy" in message


def test_a_validation_error_is_a_configuration_error() -> None:
    with (
        ScriptedServer().answer(400, _error("ValidationError", "bad name")) as sts,
        pytest.raises(ConfigError, match="ValidationError"),
    ):
        AwsBroker(_plan(sts.url), FAST).issue(Tokens(), lambda g: None)


def test_server_errors_give_up_as_unavailable() -> None:
    with (
        ScriptedServer().answer(503, "<html>down</html>") as sts,
        pytest.raises(UnavailableError, match="after 3 tries"),
    ):
        AwsBroker(_plan(sts.url), FAST).issue(Tokens(), lambda g: None)

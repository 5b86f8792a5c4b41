"""Names and tags are valid for AWS whatever the step id and CI context."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nhi_invoke.brokers.aws.tags import (
    MAX_TAGS,
    TAG_KEY_MAX,
    TAG_PATTERN,
    TAG_VALUE_MAX,
    session_tags,
)
from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.naming import SESSION_NAME_PATTERN, invocation_id, session_name

INVOCATION = invocation_id(b"\x01" * 10)
AWS_TAG = re.compile(r"[A-Za-z0-9 _.:/=+@-]*", re.ASCII)
contexts = st.builds(
    CIContext,
    provider=st.sampled_from(["github", "gitlab", "local"]),
    repository=st.none() | st.text(max_size=300),
    run_id=st.none() | st.text(max_size=80),
    run_attempt=st.none() | st.text(max_size=20),
    ref=st.none() | st.text(max_size=400),
    sha=st.none() | st.text(max_size=60),
    actor=st.none() | st.text(max_size=60),
    workflow=st.none() | st.text(max_size=400),
)


@given(step=st.text(max_size=300), context=contexts)
def test_any_step_and_context_give_a_valid_session_name(step: str, context: CIContext) -> None:
    name = session_name(step, context, INVOCATION)
    assert SESSION_NAME_PATTERN.fullmatch(name)
    assert name.endswith("." + INVOCATION)
    assert session_name(step, context, INVOCATION) == name  # deterministic


@given(step=st.text(max_size=300), context=contexts)
def test_any_step_and_context_give_valid_tags(step: str, context: CIContext) -> None:
    tags = session_tags(step, context, INVOCATION, [("team", "web")])
    assert len(tags) <= MAX_TAGS
    assert len({t.key.lower() for t in tags}) == len(tags)
    for tag in tags:
        assert 1 <= len(tag.key) <= TAG_KEY_MAX
        assert len(tag.value) <= TAG_VALUE_MAX
        assert TAG_PATTERN.fullmatch(tag.key)
        assert AWS_TAG.fullmatch(tag.value)


def test_a_plain_step_keeps_its_name_run_and_attempt() -> None:
    context = CIContext(provider="github", run_id="123456", run_attempt="2")
    assert session_name("deploy-web", context, INVOCATION) == f"deploy-web.123456-2.{INVOCATION}"


def test_accents_are_folded_and_other_characters_replaced() -> None:
    name = session_name("déploy web/prod", CIContext(provider="local"), INVOCATION)
    assert name.startswith("deploy-web-prod-")
    assert SESSION_NAME_PATTERN.fullmatch(name)


def test_long_steps_that_differ_late_get_different_names() -> None:
    context = CIContext(provider="local")
    first = session_name("x" * 100 + "a", context, INVOCATION)
    second = session_name("x" * 100 + "b", context, INVOCATION)
    assert first != second
    assert len(first) == len(second) == 64


def test_invocation_ids_are_short_and_distinct() -> None:
    ids = {invocation_id(bytes([i]) * 10) for i in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[a-z2-7]{12}", i) for i in ids)


@pytest.mark.parametrize("key", ["aws:foo", "AWS:foo", "nhi:step", "ci:run-id"])
def test_reserved_tag_prefixes_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="reserved"):
        session_tags("s", CIContext(provider="local"), INVOCATION, [(key, "v")])


def test_fifty_one_tags_are_refused_before_sts_is_called() -> None:
    extra = [(f"k{i}", "v") for i in range(MAX_TAGS)]
    with pytest.raises(ConfigError, match="more than the 50"):
        session_tags("s", CIContext(provider="local"), INVOCATION, extra)


def test_duplicate_keys_differing_in_case_are_refused() -> None:
    with pytest.raises(ConfigError, match="twice"):
        session_tags("s", CIContext(provider="local"), INVOCATION, [("Team", "a"), ("team", "b")])


def test_oversized_tag_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="too long"):
        session_tags("s", CIContext(provider="local"), INVOCATION, [("k", "v" * 257)])

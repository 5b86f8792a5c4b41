"""Fuzzing with hypothesis: no input makes a parser crash, only fail with our own error."""

from __future__ import annotations

import base64
import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhi_invoke.audit import trust_policy
from nhi_invoke.audit.pipelines.yaml_tree import load_yaml
from nhi_invoke.errors import ConfigError, NhiError, TokenError
from nhi_invoke.ledger.store import line_hash
from nhi_invoke.ledger.verify import verify
from nhi_invoke.naming import parse_tag
from nhi_invoke.oidc import check, decode_unverified

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _segment(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@given(st.text(max_size=300))
def test_any_text_as_a_token_decodes_or_fails_with_a_token_error(text: str) -> None:
    with contextlib.suppress(TokenError):
        decode_unverified(text)


@given(
    header=json_values,
    payload=json_values,
    audience=st.text(min_size=1, max_size=20),
    now=st.floats(min_value=0, max_value=4e9),
)
def test_any_json_header_and_payload_pass_or_fail_with_a_token_error(
    header: Any, payload: Any, audience: str, now: float
) -> None:
    token = f"{_segment(header)}.{_segment(payload)}.c2ln"
    with contextlib.suppress(TokenError):
        check(decode_unverified(token), audience, now)


@given(st.text(max_size=200))
def test_any_tag_text_parses_or_fails_with_a_config_error(text: str) -> None:
    try:
        key, _ = parse_tag(text)
        assert key
    except ConfigError:
        pass


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.binary(max_size=600))
def test_any_bytes_as_a_ledger_verify_without_crashing_and_name_the_break(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ledger.jsonl"
        path.write_bytes(data)
        result = verify(str(path))
    lines = data.split(b"\n")
    count = len(lines) - 1 if data.endswith(b"\n") or not data else len(lines)
    if result.ok:
        # Intact: every line counted, the head is the last line's hash.
        assert result.lines == count
        assert result.head == (line_hash(lines[count - 1]) if count else None)
        assert result.reason is None
    else:
        # Broken: a real line is named, and why.
        assert result.broken_line is not None
        assert 1 <= result.broken_line <= count
        assert result.reason


@given(st.text(max_size=400))
def test_any_text_as_yaml_loads_or_fails_with_a_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        load_yaml("fuzz.yml", text)


@given(json_values)
def test_any_json_as_a_trust_policy_lints_or_fails_with_a_config_error(document: Any) -> None:
    try:
        findings = trust_policy.lint(document, "fuzz.json")
        assert all(f.rule.startswith("TP") for f in findings)
    except NhiError:
        pass

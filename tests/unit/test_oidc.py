"""Pre-flight checks of the OIDC token, without trusting it."""

from __future__ import annotations

from typing import Any

import pytest

from nhi_invoke.errors import TokenError
from nhi_invoke.oidc import check, decode_unverified, fingerprint, load_checked
from tests.tokens import NOW
from tests.tokens import segment as _segment
from tests.tokens import unsigned_token as _token


def test_a_good_token_passes() -> None:
    claims = load_checked(_token(), "sts.amazonaws.com", NOW)
    assert claims.recorded()["sub"] == "repo:o/r"


@pytest.mark.parametrize(
    ("token", "needle"),
    [
        ("abc", "three dot-separated"),
        ("a.b", "three dot-separated"),
        ("!!!.e30.sig", "base64url"),
        (f"{_segment([1])}.e30.sig", "JSON object"),
        (_token(header={"alg": "none"}), "unsigned"),
        (_token(header={"typ": "JWT"}), "unsigned"),
        (_token() + "x" * 20_000, "clouds accept"),
    ],
)
def test_malformed_tokens_name_the_problem(token: str, needle: str) -> None:
    with pytest.raises(TokenError, match=needle):
        decode_unverified(token)


@pytest.mark.parametrize(
    ("claims", "needle"),
    [
        ({"exp": NOW - 120}, "expired"),
        ({"exp": None}, "no 'exp'"),
        ({"exp": "soon"}, "not a number"),
        ({"nbf": NOW + 120}, "nbf"),
        ({"aud": None}, "no 'aud'"),
        ({"aud": "api://other"}, "'api://other', not 'sts.amazonaws.com'"),
        ({"aud": ["a", "b"]}, "audience is 'a', 'b'"),
    ],
)
def test_failed_checks_name_which_one(claims: dict[str, Any], needle: str) -> None:
    with pytest.raises(TokenError, match=needle):
        check(decode_unverified(_token(**claims)), "sts.amazonaws.com", NOW)


def test_small_clock_skew_is_tolerated() -> None:
    check(decode_unverified(_token(exp=NOW - 30, nbf=NOW + 30)), "sts.amazonaws.com", NOW)


def test_a_list_audience_containing_ours_passes() -> None:
    check(decode_unverified(_token(aud=["x", "sts.amazonaws.com"])), "sts.amazonaws.com", NOW)


def test_fingerprint_names_without_revealing() -> None:
    token = _token()
    assert fingerprint(token).startswith("sha256:")
    assert token not in fingerprint(token)
    assert fingerprint(token) == fingerprint(token)

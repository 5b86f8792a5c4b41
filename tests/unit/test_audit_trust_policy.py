"""`audit trust-policy` in parts: subjects per issuer, the immutable form, placing findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nhi_invoke.audit import trust_policy
from nhi_invoke.audit.trust_policy.subjects import ISSUERS, can_match_immutable
from nhi_invoke.errors import ConfigError

POLICIES = Path(__file__).parent.parent / "fixtures" / "trust_policies"


@pytest.mark.parametrize(
    ("issuer", "pattern", "part"),
    [
        ("github", "*", "all"),
        ("github", "repo:*", "all"),
        ("github", "repo:*/web:*", "all"),
        ("github", "repo:acme*", "owner"),
        ("github", "repo:acme/*", "project"),
        ("github", "repo:acme/web-?", "project"),
        ("github", "repo:acme/web:*", ""),
        ("github", "repo:acme/web:ref:refs/heads/*", ""),
        ("github", "repo:acme/web", ""),
        ("github", "custom_claim:acme:*", ""),
        ("gitlab", "project_path:acme/platform/*:ref_type:branch:ref:main", "project"),
        ("gitlab", "project_path:ac*/web:*", "owner"),
        ("buildkite", "organization:acme:pipeline:deploy:ref:refs/heads/main:*", ""),
        ("buildkite", "organization:acme:pipeline:*", "project"),
        ("buildkite", "organization:acme:*", "project"),
        ("buildkite", "organization:acme-*:pipeline:deploy:*", "owner"),
        ("circleci", "org/ORG/project/*/user/*", "project"),
        ("circleci", "org/ORG/project/PROJECT/user/*", ""),
        ("bitbucket", "{repository-uuid}:*", ""),
        ("bitbucket", "*", "all"),
    ],
)
def test_which_part_a_subject_pattern_leaves_open(issuer: str, pattern: str, part: str) -> None:
    assert ISSUERS[issuer].open_part(pattern) == part


@pytest.mark.parametrize(
    ("pattern", "like", "expected"),
    [
        ("repo:acme@12/web@34:ref:refs/heads/main", False, True),
        ("repo:acme@12/web@34", False, True),
        ("repo:acme/web:ref:refs/heads/main", False, False),
        ("repo:acme@12/web@34:*", True, True),
        ("repo:acme/*", True, False),  # the owner is followed by / at once: no @ID
        ("repo:acme*", True, True),
        ("repo:*", True, True),
        ("repo:acme@*/web@*:*", True, True),
        ("repo:acme@x/web@34", True, False),
        ("repo:acme/*", False, False),  # StringEquals: * is a character
    ],
)
def test_which_patterns_can_match_the_immutable_subject(
    pattern: str, like: bool, expected: bool
) -> None:
    assert can_match_immutable(pattern, like) is expected


def test_a_document_given_as_data_is_placed_on_its_rendering() -> None:
    document = json.loads((POLICIES / "gh-no-sub.json").read_text())
    findings = trust_policy.lint(document, "role/deploy")
    rendering = json.dumps(document, indent=2).splitlines()
    assert [f.kind for f in findings] == ["missing-sub"]
    assert rendering[findings[0].line - 1].strip().startswith('"Condition"')


def test_the_same_policy_read_from_its_file_keeps_its_own_lines() -> None:
    report = trust_policy.lint_files((str(POLICIES / "gh-two-statements.json"),))
    assert [(f.kind, f.line) for f in report.findings] == [("missing-sub", 21)]


@pytest.mark.parametrize("document", [[], {"Version": "2012-10-17"}, {"Statement": "x"}])
def test_what_is_not_a_policy_is_a_configuration_error(document: object) -> None:
    with pytest.raises(ConfigError, match="not an IAM policy document"):
        trust_policy.lint(document, "bad.json")


def test_a_file_that_is_not_json_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "policy.json"
    bad.write_text('{"Statement": [')
    with pytest.raises(ConfigError, match="is not JSON"):
        trust_policy.lint_files((str(bad),))

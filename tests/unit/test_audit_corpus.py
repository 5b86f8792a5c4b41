"""Every case of the audit corpora, asserted exactly: kind, severity, file and line (±0).

The expectations are written by hand in each corpus's expected-findings.txt; the same files
feed benchmarks/audit_corpus.py, which prints recall, precision and the exact-findings rate.
"""

from __future__ import annotations

import pytest

from benchmarks.audit_corpus import (
    PIPELINES,
    POLICIES,
    expectations,
    pipeline_findings,
    policy_expectations,
    policy_findings,
)

PIPELINE_CASES = expectations(PIPELINES / "expected-findings.txt")
POLICY_CASES = policy_expectations()
PIPELINE_KINDS = {"long-lived-key", "job-wide-credentials", "shared-identity", "broad-id-token"}
POLICY_KINDS = {
    "missing-aud",
    "missing-sub",
    "wildcard-sub",
    "repo-wildcard",
    "immutable-sub-unhandled",
    "chaining-without-tagsession",
}


@pytest.mark.parametrize("case", sorted(PIPELINE_CASES))
def test_pipeline_case_reports_exactly_its_expected_findings(case: str) -> None:
    assert sorted(pipeline_findings(case)) == sorted(PIPELINE_CASES[case])


@pytest.mark.parametrize("policy", sorted(POLICY_CASES))
def test_trust_policy_reports_exactly_its_expected_findings(policy: str) -> None:
    assert sorted(policy_findings(policy)) == sorted(POLICY_CASES[policy])


def test_every_pipeline_case_on_disk_has_expectations() -> None:
    on_disk = {p.name for p in PIPELINES.iterdir() if p.is_dir()}
    assert on_disk == set(PIPELINE_CASES)


def test_every_policy_on_disk_has_expectations() -> None:
    assert {p.name for p in POLICIES.glob("*.json")} == set(POLICY_CASES)


def test_the_pipeline_corpus_covers_five_cis_every_kind_and_clean_cases() -> None:
    assert len(PIPELINE_CASES) >= 40
    for prefix in ("gh-", "gl-", "cc-", "bk-", "bb-"):
        cases = [c for c in PIPELINE_CASES if c.startswith(prefix)]
        assert len(cases) >= 5, prefix
        assert any(not PIPELINE_CASES[c] for c in cases), f"{prefix} has no clean case"
    kinds = {kind for found in PIPELINE_CASES.values() for _, _, kind, _ in found}
    assert kinds >= PIPELINE_KINDS


def test_the_policy_corpus_covers_every_kind_and_clean_policies() -> None:
    assert len(POLICY_CASES) >= 40
    kinds = {kind for found in POLICY_CASES.values() for _, _, kind, _ in found}
    assert kinds >= POLICY_KINDS
    assert sum(1 for found in POLICY_CASES.values() if not found) >= 10

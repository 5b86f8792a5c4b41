"""SARIF for GitHub code scanning: valid, each result tied to its rule, placed and fingerprinted."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from nhi_invoke.audit import sarif, trust_policy
from nhi_invoke.audit.pipelines import RULES, audit

FIXTURES = Path(__file__).parent.parent / "fixtures"
SCHEMA = json.loads(
    (Path(__file__).parent.parent / "schemas" / "sarif-2.1.0-rtm.5.json").read_text()
)


def test_pipeline_sarif_is_valid_and_each_result_names_its_rule_line_fix_and_fingerprint() -> None:
    report = audit(str(FIXTURES / "pipelines" / "gh-composite-chain"))
    log = sarif.document(report.findings, RULES)
    jsonschema.validate(log, SCHEMA)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["NHI001", "NHI002", "NHI003", "NHI004", "NHI005"]
    results = run["results"]
    assert len(results) == len(report.findings) == 4
    for result, finding in zip(results, report.findings, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == finding.rule
        assert rules[result["ruleIndex"]]["name"] == finding.kind
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == finding.file
        assert location["region"]["startLine"] == finding.line
        assert result["message"]["text"].endswith(f"Fix: {finding.fix}.")
        assert result["partialFingerprints"]["nhiInvokeFindingHash/v1"] == finding.fingerprint
    assert len({r["partialFingerprints"]["nhiInvokeFindingHash/v1"] for r in results}) == 4


def test_trust_policy_sarif_is_valid_and_uses_the_policy_rules() -> None:
    report = trust_policy.lint_files(
        (str(FIXTURES / "trust_policies" / "gh-stringlike-mixed-list.json"),)
    )
    log = sarif.document(report.findings, trust_policy.RULES)
    jsonschema.validate(log, SCHEMA)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    found = [
        (
            rules[r["ruleIndex"]]["name"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in log["runs"][0]["results"]
    ]
    assert sorted(found) == [("repo-wildcard", 13), ("wildcard-sub", 14)]

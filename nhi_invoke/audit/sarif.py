"""SARIF 2.1.0 for GitHub code scanning (and any other SARIF reader).

Each result names its rule by id and by index into the driver's rules, is placed on the line
the fix goes on, carries the fix in its message, and has a partial fingerprint that survives
lines moving, so code scanning keeps one alert per finding across commits.
"""

from __future__ import annotations

from typing import Any

from nhi_invoke import __version__
from nhi_invoke.audit.findings import Finding, Rule
from nhi_invoke.errors import ConfigError

LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
FINGERPRINT = "nhiInvokeFindingHash/v1"
DOCS = "https://github.com/nhi-invoke/nhi-invoke/blob/main/docs/audit.md"


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.kind,
        "shortDescription": {"text": rule.summary},
        "helpUri": f"{DOCS}#{rule.kind}",
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "tags": ["security", rule.kind],
        },
    }


def _result(finding: Finding, index: int) -> dict[str, Any]:
    return {
        "ruleId": finding.rule,
        "ruleIndex": index,
        "level": LEVELS[finding.severity],
        "message": {"text": f"{finding.message.rstrip('.')}. Fix: {finding.fix}."},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": finding.file.replace("\\", "/")},
                    "region": {"startLine": max(1, finding.line)},
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT: finding.fingerprint},
        "properties": {"kind": finding.kind, "severity": finding.severity, "fix": finding.fix},
    }


def document(
    findings: tuple[Finding, ...] | list[Finding], rules: dict[str, Rule]
) -> dict[str, Any]:
    """A SARIF log with one run of nhi-invoke: every rule, then every finding."""
    ordered_rules = list(rules.values())
    index = {rule.id: number for number, rule in enumerate(ordered_rules)}
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nhi-invoke",
                        "version": __version__,
                        "informationUri": DOCS,
                        "rules": [_rule(rule) for rule in ordered_rules],
                    }
                },
                "results": [_result(f, index[f.rule]) for f in findings],
            }
        ],
    }


def write(path: str, text: str) -> None:
    """Write a SARIF log to `path`, or fail with the one-line configuration error."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise ConfigError(
            f"cannot write SARIF to {path}: {exc.strerror}", "pass a path in a writable folder"
        ) from exc

"""SARIF 2.1.0 for GitHub code scanning."""

from __future__ import annotations

from typing import Any

from nhi_invoke import __version__
from nhi_invoke.audit.findings import Finding, Rule

LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def document(
    findings: tuple[Finding, ...] | list[Finding], rules: dict[str, Rule]
) -> dict[str, Any]:
    """A SARIF log with one run of nhi-invoke."""
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nhi-invoke",
                        "version": __version__,
                        "rules": [
                            {
                                "id": rule.id,
                                "name": rule.name,
                                "shortDescription": {"text": rule.summary},
                                "defaultConfiguration": {"level": LEVELS[rule.severity]},
                                "properties": {
                                    "security-severity": SECURITY_SEVERITY[rule.severity],
                                    "tags": ["security"],
                                },
                            }
                            for rule in rules.values()
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": finding.rule,
                        "level": LEVELS[finding.severity],
                        "message": {"text": f"{finding.message}. Fix: {finding.fix}."},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": finding.file.replace("\\\\", "/")},
                                    "region": {"startLine": max(1, finding.line)},
                                }
                            }
                        ],
                        "properties": {"severity": finding.severity},
                    }
                    for finding in findings
                ],
            }
        ],
    }

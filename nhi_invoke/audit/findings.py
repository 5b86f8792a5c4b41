"""Findings of the audits: one shape for every rule, ranked by severity."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from nhi_invoke.errors import ConfigError

SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Rule:
    """A rule: its stable id (SARIF), its kind (what the docs and JSON call it), its severity."""

    id: str
    kind: str
    severity: str
    summary: str


@dataclass(frozen=True)
class Finding:
    """One finding, placed on the line a reviewer must change."""

    rule: str
    kind: str
    severity: str
    file: str
    line: int
    message: str
    fix: str
    # Stable across commits that move the line: the rule, the file and the line's text.
    fingerprint: str = ""

    def at_least(self, threshold: str) -> bool:
        return SEVERITIES.index(self.severity) >= SEVERITIES.index(threshold)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
            "fingerprint": self.fingerprint,
        }


def finding(rule: Rule, file: str, line: int, message: str, fix: str) -> Finding:
    """A finding of `rule` at `file:line`, with the rule's severity."""
    return Finding(rule.id, rule.kind, rule.severity, file, line, message, fix)


def checked_severity(option: str, value: str) -> str:
    """`value` when it names a severity, else the one-line configuration error."""
    if value not in SEVERITIES:
        raise ConfigError(
            f"{option} {value!r} is not a severity", f"use one of {', '.join(SEVERITIES)}"
        )
    return value


def gate(findings: tuple[Finding, ...] | list[Finding], fail_on: str) -> int:
    """The exit code of an audit: 1 when a finding is at least `fail_on`, else 0."""
    return 1 if any(f.at_least(fail_on) for f in findings) else 0


def fingerprinted(findings: list[Finding], line_text: Callable[[str, int], str]) -> list[Finding]:
    """Each finding with its fingerprint: a hash of its rule, file and the text of its line
    (not the line number), and which occurrence of that text it is."""
    seen: dict[tuple[str, str, str], int] = {}
    result = []
    for item in sorted(findings, key=lambda f: (f.file, f.line, f.rule)):
        text = " ".join(line_text(item.file, item.line).split())
        occurrence = seen.get((item.rule, item.file, text), 0)
        seen[(item.rule, item.file, text)] = occurrence + 1
        digest = hashlib.sha256(
            "\0".join((item.rule, item.file, text, str(occurrence))).encode()
        ).hexdigest()
        result.append(replace(item, fingerprint=digest[:32]))
    return result


def ordered(findings: list[Finding]) -> tuple[Finding, ...]:
    """Findings in reading order: by file, line, then rule."""
    return tuple(sorted(findings, key=lambda f: (f.file, f.line, f.rule)))

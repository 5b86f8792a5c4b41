"""The two findings that matter most, and the exit code they give.

- used after the invocation ended: the command is gone, so someone else holds its credential;
- unattributed: a session of a role or service account nhi-invoke manages that no ledger knows,
  so the identity is still shared outside this tool.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nhi_invoke.audit.trace.model import TracedEvent
from nhi_invoke.errors import ConfigError

# Each level fails on its own finding and on every finding before it.
FAIL_ON = ("none", "after-end", "unattributed")


@dataclass(frozen=True)
class Findings:
    after_end: int
    unattributed: int
    ambiguous: int


def count(events: Iterable[TracedEvent]) -> Findings:
    after = unattributed = ambiguous = 0
    for traced in events:
        after += traced.after_end
        unattributed += traced.unattributed
        ambiguous += bool(traced.ambiguous)
    return Findings(after, unattributed, ambiguous)


def check_fail_on(value: str) -> str:
    if value not in FAIL_ON:
        raise ConfigError(
            f"--fail-on {value!r} is not a choice", f"use one of {', '.join(FAIL_ON)}"
        )
    return value


def exit_code(findings: Findings, fail_on: str) -> int:
    """1 when a finding the gate names was found, else 0."""
    level = FAIL_ON.index(check_fail_on(fail_on))
    failing = (level >= 1 and findings.after_end > 0) or (level >= 2 and findings.unattributed > 0)
    return 1 if failing else 0

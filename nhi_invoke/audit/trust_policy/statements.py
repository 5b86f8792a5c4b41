"""A trust policy statement as IAM reads it: principals, allowed actions, conditions.

Action names and condition keys are matched case-insensitively, as IAM does; action wildcards
(`sts:*`, `sts:Assume*`) allow what they match; `ForAnyValue:`/`ForAllValues:` qualifiers and
the `…IfExists` suffix are read through to the operator underneath.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from nhi_invoke.audit.trust_policy.document import JArray, JObject

POSITIVE = frozenset({"stringequals", "stringequalsignorecase", "stringlike"})
ROLE_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:(iam::\d{12}:role/|sts::\d{12}:assumed-role/)")


@dataclass(frozen=True)
class Value:
    text: str
    line: int


@dataclass(frozen=True)
class Condition:
    operator: str  # the operator underneath, lower case: stringequals, stringlike…
    key: str  # lower case
    key_line: int
    values: tuple[Value, ...]

    @property
    def positive(self) -> bool:
        """Whether the condition names what may match (not what may not)."""
        return self.operator in POSITIVE

    @property
    def like(self) -> bool:
        return self.operator == "stringlike"


def _values(block: JObject, key: str) -> tuple[Value, ...]:
    raw = block[key]
    if isinstance(raw, JArray):
        return tuple(Value(str(v), line) for v, line in zip(raw, raw.item_lines, strict=False))
    return (Value(str(raw), block.value_line(key)),)


def conditions(statement: JObject) -> list[Condition]:
    found: list[Condition] = []
    raw = statement.get("Condition")
    if not isinstance(raw, JObject):
        return found
    for operator, block in raw.items():
        if not isinstance(block, JObject):
            continue
        base = operator.split(":", 1)[-1].lower()  # ForAnyValue:/ForAllValues: read through
        base = base.removesuffix("ifexists")
        for key in block:
            found.append(Condition(base, key.lower(), block.key_line(key), _values(block, key)))
    return found


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if isinstance(v, str | int)]


def principals(statement: JObject, kind: str) -> list[str]:
    """The principals of one kind ("AWS", "Federated", "Service"); ["*"] for `"Principal": "*"`."""
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        for key, value in principal.items():
            if key.lower() == kind.lower():
                return _strings(value)
    return []


def allows(statement: JObject, action: str) -> bool:
    """Whether an Allow statement allows `action` (through Action, or not excluded by NotAction)."""
    if statement.get("Effect") != "Allow":
        return False
    wanted = action.lower()
    if "Action" in statement:
        return any(fnmatch.fnmatchcase(wanted, a.lower()) for a in _strings(statement["Action"]))
    if "NotAction" in statement:
        return not any(
            fnmatch.fnmatchcase(wanted, a.lower()) for a in _strings(statement["NotAction"])
        )
    return False


def provider_hosts(statement: JObject) -> list[str]:
    """The hosts (with paths) of the IAM OIDC providers a statement trusts."""
    return [
        p.split(":oidc-provider/", 1)[1]
        for p in principals(statement, "Federated")
        if ":oidc-provider/" in p
    ]


def is_role(principal: str) -> bool:
    return bool(ROLE_PRINCIPAL.match(principal))


def covers(granted: str, role: str) -> bool:
    """Whether a principal named in a statement covers `role` (itself, its account, or anyone)."""
    if granted == "*" or granted.lower() == role.lower():
        return True
    account = role.split(":")[4]
    return granted in (account, f"arn:aws:iam::{account}:root") or granted.endswith(
        f":iam::{account}:root"
    )

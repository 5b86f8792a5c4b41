"""`nhi-invoke audit trust-policy`: lint an AWS role trust policy for OIDC federation and chaining.

One finding per statement and kind, on the line the fix goes on: the value to change, or the
Condition block (the statement, when it has none) where a missing condition goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nhi_invoke.audit.findings import Finding, Rule, finding, fingerprinted, ordered
from nhi_invoke.audit.trust_policy import subjects
from nhi_invoke.audit.trust_policy.document import JObject, as_text, parse
from nhi_invoke.audit.trust_policy.statements import (
    Condition,
    Value,
    allows,
    conditions,
    covers,
    is_role,
    principals,
    provider_hosts,
)
from nhi_invoke.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

MISSING_AUD = Rule(
    "TP001",
    "missing-aud",
    "medium",
    "A web-identity statement does not pin the token's audience (aud).",
)
MISSING_SUB = Rule(
    "TP002",
    "missing-sub",
    "high",
    "A web-identity statement does not scope the token's subject (sub).",
)
WILDCARD_SUB = Rule(
    "TP003", "wildcard-sub", "high", "A sub pattern matches the subjects of any owner."
)
REPO_WILDCARD = Rule(
    "TP004",
    "repo-wildcard",
    "medium",
    "A sub pattern has a wildcard in the repository/project or owner part.",
)
IMMUTABLE_SUB = Rule(
    "TP005",
    "immutable-sub-unhandled",
    "low",
    "GitHub subjects are pinned by name only, not by repo:OWNER@ID/REPO@ID.",
)
CHAINING = Rule(
    "TP007",
    "chaining-without-tagsession",
    "medium",
    "A role trusted for chaining does not allow sts:TagSession and "
    "sts:SetSourceIdentity, which nhi-invoke's chained hop sends.",
)
ANY_PRINCIPAL = Rule(
    "TP008",
    "any-principal",
    "critical",
    "A statement lets any principal assume the role, with no condition.",
)
RULES = {
    r.id: r
    for r in (
        MISSING_AUD,
        MISSING_SUB,
        WILDCARD_SUB,
        REPO_WILDCARD,
        IMMUTABLE_SUB,
        CHAINING,
        ANY_PRINCIPAL,
    )
}
# Issuers that pin the owner themselves (one issuer per organisation or workspace): a missing
# sub lets in any project of that owner, not anyone's.
PER_OWNER_ISSUERS = frozenset({"circleci", "bitbucket"})
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
TAG_ACTIONS = ("sts:TagSession", "sts:SetSourceIdentity")
ORGANIZATION_TAG = "aws:requesttag/organization_slug"
PIPELINE_TAG = "aws:requesttag/pipeline_slug"


def _with_severity(
    rule: Rule, severity: str, where: str, line: int, message: str, fix: str
) -> Finding:
    found = finding(rule, where, line, message, fix)
    return Finding(
        found.rule, found.kind, severity, found.file, found.line, found.message, found.fix
    )


def _condition_line(statement: JObject) -> int:
    """Where a missing condition goes: the Condition block, else the statement."""
    return statement.key_line("Condition") if "Condition" in statement else statement.line


def _keyed(found: list[Condition], hosts: list[str], claim: str) -> list[Condition]:
    suffixes = [f"{h.lower()}:{claim}" for h in hosts] or []
    return [
        c
        for c in found
        if c.positive and (c.key in suffixes or (not hosts and c.key.endswith(f":{claim}")))
    ]


def _audience(
    statement: JObject, found: list[Condition], hosts: list[str], where: str
) -> list[Finding]:
    audiences = _keyed(found, hosts, "aud")
    exact = [
        v
        for c in audiences
        for v in c.values
        if not (c.like and any(w in v.text for w in subjects.WILDCARDS))
    ]
    if exact:
        return []
    wildcard = [v for c in audiences for v in c.values]
    line = wildcard[0].line if wildcard else _condition_line(statement)
    detail = f" ({wildcard[0].text!r} is a pattern)" if wildcard else ""
    return [
        finding(
            MISSING_AUD,
            where,
            line,
            f"{MISSING_AUD.summary}{detail}",
            "add StringEquals <provider>:aud with the exact audience, e.g. sts.amazonaws.com",
        )
    ]


def _open_parts(
    issuer: subjects.Issuer | None, values: list[tuple[Value, bool]], tags: list[Condition]
) -> list[tuple[str, Value]]:
    """(part left open, value) for each pattern that leaves more than the context open."""
    found = []
    for value, like in values:
        if like and issuer is not None:
            part = issuer.open_part(value.text)
            if part:
                found.append((part, value))
        elif like and value.text.strip() in ("*", "?*"):
            found.append(("all", value))
    for tag in tags:
        for value in tag.values:
            if tag.like and any(w in value.text for w in subjects.WILDCARDS):
                literal = value.text.split("*")[0].split("?")[0]
                owner = tag.key == ORGANIZATION_TAG
                found.append(
                    ("all" if owner and not literal else "owner" if owner else "project", value)
                )
    return found


def _subject(
    statement: JObject, found: list[Condition], hosts: list[str], where: str
) -> list[Finding]:
    subs = _keyed(found, hosts, "sub")
    values = [(v, c.like) for c in subs for v in c.values]
    kind = next((subjects.issuer_of(h) for h in hosts if subjects.issuer_of(h)), "")
    kind = kind or subjects.issuer_of_subjects([v.text for v, _ in values])
    tags = [c for c in found if c.positive and c.key in (ORGANIZATION_TAG, PIPELINE_TAG)]
    results: list[Finding] = []
    scoped = bool(subs) or (kind == "buildkite" and any(t.key == ORGANIZATION_TAG for t in tags))
    if not scoped:
        severity = "medium" if kind in PER_OWNER_ISSUERS else "high"
        who = "project of the owner" if severity == "medium" else "repository of the issuer"
        results.append(
            _with_severity(
                MISSING_SUB,
                severity,
                where,
                _condition_line(statement),
                f"{MISSING_SUB.summary} Any {who} can assume the role.",
                "add a StringEquals (or StringLike) condition on <provider>:sub naming the "
                "repository and the ref or environment",
            )
        )
    issuer = subjects.ISSUERS.get(kind)
    open_parts = _open_parts(issuer, values, tags if kind == "buildkite" else [])
    everything = [v for part, v in open_parts if part == "all"]
    if everything:
        results.append(
            finding(
                WILDCARD_SUB,
                where,
                everything[0].line,
                f"{WILDCARD_SUB.summary} ({', '.join(repr(v.text) for v in everything)})",
                "name the owner and the repository exactly; wildcards belong after "
                "them (e.g. repo:my-org/my-repo:environment:*)",
            )
        )
    partial = [(part, v) for part, v in open_parts if part in ("owner", "project")]
    if partial:
        owner = [v for part, v in partial if part == "owner"]
        first = owner[0] if owner else partial[0][1]
        results.append(
            _with_severity(
                REPO_WILDCARD,
                "high" if owner else "medium",
                where,
                first.line,
                f"{REPO_WILDCARD.summary} ({', '.join(repr(v.text) for _, v in partial)})",
                "name the repository (project, pipeline) exactly; wildcards belong after it",
            )
        )
    if kind == "github":
        results += _immutable(subs, values, where)
    return results


def _immutable(
    subs: list[Condition], values: list[tuple[Value, bool]], where: str
) -> list[Finding]:
    repo_subjects = [v for v, _ in values if v.text.startswith("repo:")]
    if not repo_subjects or any(subjects.can_match_immutable(v.text, like) for v, like in values):
        return []
    return [
        finding(
            IMMUTABLE_SUB,
            where,
            subs[0].key_line,
            f"{IMMUTABLE_SUB.summary} A deleted and re-created repository of the same "
            "name would match.",
            "also allow repo:OWNER@OWNER_ID/REPO@REPO_ID:… (the immutable subject)",
        )
    ]


def _chaining(statement: JObject, statements: list[JObject], where: str) -> list[Finding]:
    roles = [p for p in principals(statement, "AWS") if is_role(p)]
    if not roles or not allows(statement, "sts:AssumeRole"):
        return []
    missing = sorted(
        {
            action
            for role in roles
            for action in TAG_ACTIONS
            if not any(
                allows(s, action) and any(covers(p, role) for p in principals(s, "AWS"))
                for s in statements
            )
        }
    )
    if not missing:
        return []
    line = statement.key_line("Action") if "Action" in statement else statement.line
    return [
        finding(
            CHAINING,
            where,
            line,
            f"{CHAINING.summary} (missing {', '.join(missing)})",
            "allow sts:TagSession and sts:SetSourceIdentity to the same principal",
        )
    ]


def _document(value: Any, where: str) -> JObject:
    if isinstance(value, JObject) and isinstance(value.get("Role"), JObject):
        inner = value["Role"].get("AssumeRolePolicyDocument")  # `aws iam get-role` output
        if isinstance(inner, JObject):
            value = inner
    if not isinstance(value, JObject) or not isinstance(value.get("Statement"), JObject | list):
        raise ConfigError(f"{where} is not an IAM policy document", "it needs a Statement")
    return value


def lint(document: Any, where: str, text: str | None = None) -> list[Finding]:
    """The findings for one trust policy (`text`: the JSON it was read from, for lines)."""
    text = text if text is not None else as_text(document)
    try:
        parsed = parse(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{where} is not JSON: {exc}", "pass a trust policy document") from exc
    policy = _document(parsed, where)
    raw = policy["Statement"]
    statements = [s for s in (raw if isinstance(raw, list) else [raw]) if isinstance(s, JObject)]
    results: list[Finding] = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        if "*" in principals(statement, "AWS") and "Condition" not in statement:
            line = statement.key_line("Principal")
            results.append(
                finding(
                    ANY_PRINCIPAL,
                    where,
                    line,
                    ANY_PRINCIPAL.summary,
                    "name the principals that may assume the role",
                )
            )
            continue
        hosts = provider_hosts(statement)
        if hosts and allows(statement, WEB_IDENTITY):
            found = conditions(statement)
            results += _audience(statement, found, hosts, where)
            results += _subject(statement, found, hosts, where)
        results += _chaining(statement, statements, where)
    lines = text.splitlines()
    return list(
        ordered(
            fingerprinted(results, lambda _file, n: lines[n - 1] if 0 < n <= len(lines) else "")
        )
    )


@dataclass(frozen=True)
class PolicyReport:
    policies: tuple[str, ...]
    findings: tuple[Finding, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"policies": list(self.policies), "findings": [f.as_dict() for f in self.findings]}


def lint_files(paths: tuple[str, ...]) -> PolicyReport:
    """Lint each policy file (a policy document, or `aws iam get-role` output)."""
    found: list[Finding] = []
    for path in paths:
        document, text = load(path)
        found += lint(document, path, text)
    return PolicyReport(paths, tuple(found))


def lint_role(role: str, environ: Mapping[str, str]) -> PolicyReport:
    """Lint the trust policy of an IAM role, read through IAM (shown as role/NAME)."""
    where = f"role/{role.rsplit('/', 1)[-1]}"
    return PolicyReport((where,), tuple(lint(from_role(role, dict(environ)), where)))


def load(path: str) -> tuple[Any, str]:
    """A policy file's document and its text."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        return json.loads(text), text
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}", "pass a trust policy file"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is not JSON: {exc}", "pass a trust policy document") from exc


def from_role(role: str, environ: dict[str, str]) -> Any:
    """A role's trust policy, read through IAM with the ambient AWS credentials."""
    import botocore.exceptions  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    from nhi_invoke.brokers.aws.declaration import iam_endpoint  # noqa: PLC0415

    try:
        iam: IAMClient = botocore.session.Session().create_client(  # type: ignore[assignment]
            "iam", region_name="us-east-1", endpoint_url=iam_endpoint(environ)
        )
        document = iam.get_role(RoleName=role.rsplit("/", 1)[-1])["Role"][
            "AssumeRolePolicyDocument"
        ]
    except botocore.exceptions.NoCredentialsError as exc:
        raise ConfigError(
            "no AWS credentials to read the role with",
            "run where AWS credentials are available, or pass the policy file",
        ) from exc
    except botocore.exceptions.ClientError as exc:
        raise ConfigError(
            f"IAM refused GetRole for {role}: {exc}",
            "check the role name and iam:GetRole permission",
        ) from exc
    # IAM returns the document URL-encoded over the query API; botocore decodes it.
    return json.loads(document) if isinstance(document, str) else document

"""`nhi-invoke audit trust-policy`: lint an AWS role trust policy for OIDC federation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nhi_invoke.audit.findings import Finding, Rule
from nhi_invoke.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

RULES = {
    r.id: r for r in (
        Rule("TP001", "oidc-no-audience", "high",
             "A web-identity statement has no condition on the token's audience (aud)."),
        Rule("TP002", "oidc-no-subject", "critical",
             "A web-identity statement has no condition on the token's subject (sub): any "
             "repository or project of the issuer can assume the role."),
        Rule("TP003", "oidc-any-subject", "critical",
             "The sub condition matches every subject."),
        Rule("TP004", "oidc-wildcard-repository", "high",
             "The sub condition has a wildcard in the owner or repository part."),
        Rule("TP005", "oidc-mutable-subject", "medium",
             "The sub condition pins repository names only, not the immutable "
             "repo:OWNER@ID/REPO@ID form."),
        Rule("TP006", "oidc-wildcard-audience", "high",
             "The aud condition uses a wildcard."),
        Rule("TP007", "chain-without-tags", "medium",
             "A role trusted for chaining does not allow sts:TagSession and "
             "sts:SetSourceIdentity, which nhi-invoke's chained hop sends."),
        Rule("TP008", "any-principal", "critical",
             "A statement lets any principal assume the role."),
    )
}  # fmt: skip
_GITHUB_SUBJECT = re.compile(r"repo:(?P<owner>[^/:]*)/(?P<repo>[^:]*)(?::|$)")
_GITLAB_SUBJECT = re.compile(r"project_path:(?P<owner>[^:]*)/(?P<repo>[^:]*)(?::|$)")
_IMMUTABLE = re.compile(r"repo:[^/:]+@\d+/[^:]+@\d+")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions(statement: dict[str, Any], suffix: str) -> list[tuple[str, str]]:
    """(operator, value) pairs of every condition whose key ends with `suffix`."""
    found = []
    for operator, block in (statement.get("Condition") or {}).items():
        if not isinstance(block, dict):
            continue
        for key, values in block.items():
            if str(key).endswith(suffix):
                found += [(str(operator), str(v)) for v in _as_list(values)]
    return found


def _finding(rule_id: str, where: str, line: int, detail: str, fix: str) -> Finding:
    rule = RULES[rule_id]
    return Finding(rule.id, rule.severity, where, line, f"{rule.summary} {detail}".strip(), fix)


def _subject_findings(subjects: list[tuple[str, str]], where: str, line: int) -> Iterator[Finding]:
    names_only = True
    pinned = False  # at least one subject that names a repository
    for operator, value in subjects:
        wildcard = "Like" in operator
        if value.strip() in ("*", "repo:*", "project_path:*") or (wildcard and value == "*"):
            yield _finding(
                "TP003",
                where,
                line,
                f"({operator} {value!r})",
                "pin sub to one repository and ref, e.g. repo:my-org/my-repo:ref:refs/heads/main",
            )
            continue
        pinned = pinned or value.startswith("repo:")
        match = _GITHUB_SUBJECT.match(value) or _GITLAB_SUBJECT.match(value)
        if match and wildcard and any(c in match["owner"] + match["repo"] for c in "*?"):
            yield _finding(
                "TP004",
                where,
                line,
                f"({value!r})",
                "name the repository exactly; wildcards belong after it "
                "(e.g. repo:my-org/my-repo:environment:*)",
            )
        if _IMMUTABLE.match(value):
            names_only = False
    if names_only and pinned:
        yield _finding(
            "TP005",
            where,
            line,
            "",
            "also allow repo:OWNER@OWNER_ID/REPO@REPO_ID (or condition on "
            "repository_id) so a re-created repository of the same name cannot match",
        )


def statement_lines(text: str) -> list[int]:
    """The line of each statement's "Effect" key, in order: where findings point."""
    return [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r'"Effect"\s*:', text)]


def lint(document: Any, where: str, lines: list[int] | None = None) -> list[Finding]:
    """The findings for one trust policy document (`lines`: each statement's line)."""
    if not isinstance(document, dict) or not isinstance(document.get("Statement"), list | dict):
        raise ConfigError(f"{where} is not an IAM policy document", "it needs a Statement")
    findings: list[Finding] = []
    for index, statement in enumerate(_as_list(document["Statement"]), start=1):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        line = lines[index - 1] if lines and index <= len(lines) else index
        actions = {str(a) for a in _as_list(statement.get("Action", []))}
        principal = statement.get("Principal")
        if principal == "*" or (
            isinstance(principal, dict) and "*" in _as_list(principal.get("AWS", []))
        ):
            findings.append(
                _finding("TP008", where, line, "", "name the principals that may assume the role")
            )
            continue
        federated = isinstance(principal, dict) and "Federated" in principal
        if federated and actions & {"sts:AssumeRoleWithWebIdentity", "sts:*", "*"}:
            audiences = _conditions(statement, ":aud")
            subjects = _conditions(statement, ":sub")
            if not audiences:
                findings.append(
                    _finding(
                        "TP001",
                        where,
                        line,
                        "",
                        "add StringEquals <issuer>:aud = sts.amazonaws.com",
                    )
                )
            elif any("Like" in op and any(c in v for c in "*?") for op, v in audiences):
                findings.append(
                    _finding("TP006", where, line, "", "use StringEquals with the exact audience")
                )
            if not subjects:
                findings.append(
                    _finding(
                        "TP002",
                        where,
                        line,
                        "",
                        "add a StringEquals/StringLike condition on <issuer>:sub",
                    )
                )
            findings += _subject_findings(subjects, where, line)
        if isinstance(principal, dict) and "AWS" in principal and "sts:AssumeRole" in actions:
            missing = {"sts:TagSession", "sts:SetSourceIdentity"} - actions
            if missing and "sts:*" not in actions:
                findings.append(
                    _finding(
                        "TP007",
                        where,
                        line,
                        f"(missing {', '.join(sorted(missing))})",
                        "add sts:TagSession and sts:SetSourceIdentity to the statement's actions",
                    )
                )
    return findings


def load(path: str) -> tuple[Any, list[int]]:
    """A policy file's document and its statements' lines."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        return json.loads(text), statement_lines(text)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}", "pass a trust policy file"
        ) from exc
    except ValueError as exc:
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

"""Which text names a cloud identity: role ARNs, service accounts, and expressions in their place.

A literal role ARN or service-account email is an identity wherever it appears. An expression
(`${{ vars.DEPLOY_ROLE }}`, `$DEPLOY_ROLE`) is one only where a role or service account is
expected (`role-to-assume:`, `--aws-role-arn`); two jobs bound to different environments
(contexts, deployments) read different values through the same expression. nhi-invoke's entry
role (`--aws-oidc-role-arn`) is only a hop to the role the command gets: sharing it is by design.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
SERVICE_ACCOUNT = re.compile(
    r"\b[a-z0-9][\w.-]*@[a-z0-9-]+\.iam\.gserviceaccount\.com\b"
    r"|\b\d+-compute@developer\.gserviceaccount\.com\b"
)
_TEMPLATE_NEXT = ("$", "{", "<", "%")
_ENTRY_FLAG = re.compile(r"--aws-oidc-role-arn[=\s]+[\"']?$")
_POSITION_FLAG = re.compile(
    r"--(aws-role-arn|role-arn|gcp-service-account|impersonate-service-account|service-account)"
    r"[=\s]+[\"']?(\$\{\{\s*[^}]*\}\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|<<\s*[^>]*>>)"
)
_POSITION_NAMES = re.compile(
    r"^(ROLE_TO_ASSUME|AWS_ROLE_ARN|ROLE_ARN|NHI_AWS_ROLE_ARN|SERVICE_ACCOUNT|"
    r"GCP_SERVICE_ACCOUNT|NHI_GCP_SERVICE_ACCOUNT|AWS_OIDC_ROLE_ARN|OIDC_ROLE_ARN|"
    r"IMPERSONATE_SERVICE_ACCOUNT)$"
)
_LOCAL_POSITION = re.compile(r"ROLE|SERVICE_ACCOUNT")
ENTRY_NAMES = frozenset({"NHI_AWS_OIDC_ROLE_ARN"})
ENTRY_INPUTS = frozenset({"aws-oidc-role-arn"})
_STORED = re.compile(
    r"^\s*(\$\{\{\s*(vars|secrets)\.[\w-]+\s*\}\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)\s*$"
)
_MATRIX = re.compile(r"^\s*\$\{\{\s*matrix\.([\w-]+)\s*\}\}\s*$")
_PARAMETER = re.compile(r"^\s*<<\s*parameters\.([\w-]+)\s*>>\s*$")


@dataclass(frozen=True)
class Named:
    """An identity named in a value: a literal, a stored expression, or a matrix/parameter."""

    text: str
    kind: str  # "literal", "stored", "matrix", "parameter"
    column: int = 0


def _upper(name: str) -> str:
    return name.strip().upper().replace("-", "_")


def is_position(name: str, local: bool = False) -> bool:
    """Whether a setting of this name holds a role or service account."""
    upper = _upper(name)
    return bool(_POSITION_NAMES.match(upper) or (local and _LOCAL_POSITION.search(upper)))


def is_entry(name: str) -> bool:
    return name.lower() in ENTRY_INPUTS or _upper(name) in ENTRY_NAMES


def literals(text: str) -> list[Named]:
    """Literal role ARNs and service accounts in `text` (not templated, not an entry role)."""
    found = []
    for pattern in (ROLE_ARN, SERVICE_ACCOUNT):
        for match in pattern.finditer(text):
            after = text[match.end() : match.end() + 1]
            if after and after in _TEMPLATE_NEXT:
                continue  # e.g. role/deploy-${{ matrix.service }}: one per leg
            if _ENTRY_FLAG.search(text[: match.start()]):
                continue
            found.append(Named(match.group(0), "literal", match.start()))
    return found


def in_position(value: str) -> Named | None:
    """What a value in a role/service-account position names when it is not a literal."""
    if match := _MATRIX.match(value):
        return Named(match.group(1), "matrix")
    if match := _PARAMETER.match(value):
        return Named(match.group(1), "parameter")
    if _STORED.match(value):
        return Named(value.strip(), "stored")
    return None


def in_script(text: str, ci_variables: bool) -> list[Named]:
    """Identities a script line names: literals, and expressions after --aws-role-arn & co."""
    found = literals(text)
    for match in _POSITION_FLAG.finditer(text):
        named = in_position(match.group(2))
        if named is None:
            continue
        if named.kind == "stored" and not ci_variables and not named.text.startswith("${{"):
            continue  # on GitHub a shell variable comes from the file or an earlier step
        found.append(Named(named.text, named.kind, match.start(2)))
    return found


def key(named: Named, scope: str) -> str:
    """What makes two uses the same identity: the literal, or the expression in its scope."""
    return named.text.lower() if named.kind == "literal" else f"{named.text}@{scope}"

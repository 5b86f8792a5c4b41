"""Checks of single AWS option values (exit 78 on failure, naming the fix). No network."""

from __future__ import annotations

import json
import re
from typing import Any

from nhi_invoke.errors import ConfigError

AWS_MIN_DURATION = 900
AWS_MAX_DURATION = 43_200
AWS_CHAINED_MAX_DURATION = 3_600  # STS caps role chaining at one hour
MAX_POLICY_ARNS = 10
SESSION_POLICY_MAX_CHARS = 2_048  # plaintext limit of inline + managed session policies
POLICY_FILE_MAX_BYTES = 64 * 1024

ROLE_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.ASCII
)
POLICY_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::(\d{12}|aws):policy/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}", re.ASCII
)
# A region name as botocore's partitions write them (eusc-de-east-1, us-isob-east-1), or a
# partition's global pseudo-region (aws-global: the global STS endpoint).
REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}|aws(-[a-z]+)*-global", re.ASCII)


def role_arn(label: str, value: Any) -> str | None:
    if value is None:
        return None
    if not ROLE_ARN.fullmatch(str(value)):
        raise ConfigError(
            f"{label} {str(value)[:120]!r} is not an IAM role ARN",
            "use arn:aws:iam::<12-digit account>:role/<name>",
        )
    return str(value)


def region(value: str) -> str:
    if not REGION.fullmatch(value):
        raise ConfigError(
            f"--aws-region {value[:40]!r} is not an AWS region name", "use e.g. us-east-1"
        )
    return value


def aws_duration(value: int | None, *, chained: bool) -> int:
    upper = AWS_CHAINED_MAX_DURATION if chained else AWS_MAX_DURATION
    duration = AWS_MIN_DURATION if value is None else value
    if not AWS_MIN_DURATION <= duration <= upper:
        why = " (role chaining caps sessions at one hour)" if chained else ""
        raise ConfigError(
            f"--aws-duration {duration} is outside {AWS_MIN_DURATION}-{upper} s{why}",
            f"pass a duration between {AWS_MIN_DURATION} and {upper} seconds",
        )
    return duration


def policy_arns(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) > MAX_POLICY_ARNS:
        raise ConfigError(
            f"{len(values)} managed session policies, more than {MAX_POLICY_ARNS}",
            f"pass at most {MAX_POLICY_ARNS} --aws-policy-arn",
        )
    for arn in values:
        if not POLICY_ARN.fullmatch(str(arn)):
            raise ConfigError(
                f"--aws-policy-arn {str(arn)[:120]!r} is not an IAM policy ARN",
                "use arn:aws:iam::<account or aws>:policy/<name>",
            )
    return tuple(str(a) for a in values)


def session_policy(path: str) -> str:
    """The policy file's JSON, compacted the way STS counts its size."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(POLICY_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the session policy {path}: {exc.strerror}",
            "pass --aws-session-policy a readable JSON file",
        ) from exc
    if len(raw) > POLICY_FILE_MAX_BYTES:
        raise ConfigError(
            f"the session policy {path} is larger than {POLICY_FILE_MAX_BYTES} bytes",
            f"session policies are at most {SESSION_POLICY_MAX_CHARS} characters",
        )
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(
            f"the session policy {path} is not JSON: {exc}", "write an IAM policy document"
        ) from exc
    if not isinstance(document, dict) or "Statement" not in document:
        raise ConfigError(
            f"the session policy {path} is not an IAM policy document",
            "it needs a Version and a Statement",
        )
    compact = json.dumps(document, separators=(",", ":"))
    if len(compact) > SESSION_POLICY_MAX_CHARS:
        raise ConfigError(
            f"the session policy {path} is {len(compact)} characters without whitespace, more "
            f"than the {SESSION_POLICY_MAX_CHARS} STS accepts",
            "narrow it, or use --aws-policy-arn with managed policies",
        )
    return compact

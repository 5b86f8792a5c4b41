"""Checks of single option values. Each failure is a configuration error (exit 78) that
names the value and how to fix it; nothing here touches the network."""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from nhi_invoke.errors import ConfigError

AWS_MIN_DURATION = 900
AWS_MAX_DURATION = 43_200
AWS_CHAINED_MAX_DURATION = 3_600  # STS caps role chaining at one hour
MAX_POLICY_ARNS = 10
SESSION_POLICY_MAX_CHARS = 2_048  # plaintext limit of inline + managed session policies
POLICY_FILE_MAX_BYTES = 64 * 1024
STEP_ID_MAX = 200
GCP_MAX_LIFETIME = 43_200  # beyond 3600 needs the org policy that allows extended lifetimes

ROLE_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.ASCII
)
POLICY_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::(\d{12}|aws):policy/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}", re.ASCII
)
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", re.ASCII)
GCP_PROVIDER = re.compile(
    r"projects/(\d{1,20})/locations/global/workloadIdentityPools/([a-z0-9-]{4,32})"
    r"/providers/([a-z0-9-]{4,32})",
    re.ASCII,
)
SERVICE_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}@[a-z0-9][a-z0-9.-]{0,200}\.com", re.ASCII)
GCP_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", re.ASCII)


def step_id(value: str, source: str) -> str:
    if not value.strip():
        raise ConfigError(f"the step id from {source} is empty", "pass --step-id NAME")
    if len(value) > STEP_ID_MAX:
        raise ConfigError(
            f"the step id from {source} is {len(value)} characters long",
            f"use a step id of at most {STEP_ID_MAX} characters",
        )
    if any(not ch.isprintable() for ch in value):
        raise ConfigError(
            f"the step id from {source} contains a control character",
            "use letters, digits and -_. in step ids",
        )
    return value


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


def gcp_provider(value: str) -> str:
    if not GCP_PROVIDER.fullmatch(value):
        raise ConfigError(
            f"--gcp-provider {value[:160]!r} is not a workload identity provider name",
            "use projects/<project NUMBER>/locations/global/workloadIdentityPools/<pool>/"
            "providers/<provider> (ids of 4-32 lowercase letters, digits and -)",
        )
    return value


def service_account(value: str) -> str:
    if not SERVICE_ACCOUNT.fullmatch(value):
        raise ConfigError(
            f"--gcp-service-account {value[:120]!r} is not a service account email",
            "use NAME@PROJECT.iam.gserviceaccount.com",
        )
    return value


def gcp_scopes(values: tuple[str, ...]) -> tuple[str, ...]:
    for scope in values:
        parts = urllib.parse.urlsplit(scope)
        if parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in scope):
            raise ConfigError(
                f"--gcp-scope {scope[:120]!r} is not an OAuth scope URL",
                "use e.g. https://www.googleapis.com/auth/cloud-platform",
            )
    return values


def gcp_lifetime(value: int) -> int:
    if not 1 <= value <= GCP_MAX_LIFETIME:
        raise ConfigError(
            f"--gcp-lifetime {value} is outside 1-{GCP_MAX_LIFETIME} s",
            "pass a lifetime in seconds; 600 is a good default",
        )
    return value


def gcp_project(value: str) -> str:
    if not GCP_PROJECT.fullmatch(value):
        raise ConfigError(
            f"--gcp-project {value[:60]!r} is not a project id",
            "use the project id (6-30 lowercase letters, digits and -)",
        )
    return value


def endpoint(name: str, value: str) -> str:
    """An http(s) base URL without a trailing slash (used for test and private endpoints)."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(
            f"{name}={value[:120]!r} is not an http(s) base URL",
            f"set {name} to e.g. https://host:port",
        )
    return value.rstrip("/")


def kill_grace(value: int) -> int:
    if not 0 < value <= 300:
        raise ConfigError(
            f"NHI_KILL_GRACE={value} is outside 1-300 s",
            "give the command a few seconds to exit after a relayed signal",
        )
    return value


def timeout(value: int) -> int:
    if not 1 <= value <= 3600:
        raise ConfigError(
            f"--timeout {value} is outside 1-3600 s",
            "give the total time the exchanges may take, e.g. 60",
        )
    return value

"""A lean client for STS's query API: the unsigned `AssumeRoleWithWebIdentity`, the signed
`AssumeRole`, and what their error codes mean.

The web identity token is the call's only credential, so no signing (and no botocore) is
needed; this keeps the common single-hop path free of the ~150 ms botocore import.
"""

from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from nhi_invoke import net
from nhi_invoke.brokers.grants import Secret
from nhi_invoke.retry import Retryable

API_VERSION = "2011-06-15"
# The CA-bundle variable botocore honours: every AWS call of ours honours it too.
AWS_CA_VARIABLES = ("AWS_CA_BUNDLE",)
# AWS error codes, once: which are worth a retry, which mean a fresh OIDC token, which are
# our request's fault (STS's query API and IAM's share them).
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceFailure",
        "InternalFailure",
        "InternalError",
        "IDPCommunicationError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)
TOKEN_CODES = frozenset({"InvalidIdentityToken", "ExpiredTokenException", "ExpiredToken"})
CONFIG_CODES = frozenset(
    {
        "ValidationError",
        "MalformedPolicyDocument",
        "PackedPolicyTooLarge",
        "RegionDisabledException",
        "InvalidParameterValue",
        "MissingParameter",
    }
)


def retryable(code: str, status: int) -> bool:
    return code in RETRYABLE_CODES or status >= 500


@dataclass(frozen=True)
class StsCredentials:
    """What STS returns for an assumed role."""

    access_key_id: str
    secret_access_key: Secret
    session_token: Secret
    expiration: datetime
    assumed_role_arn: str
    assumed_role_id: str
    packed_policy_size: int | None = None


class StsError(Exception):
    """STS answered with an error document."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def parse_expiration(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def _text(root: ET.Element, path: str) -> str:
    node = root.find(path)
    if node is None or node.text is None:
        raise Retryable(f"STS answered without {path.rsplit('}', 1)[-1]}")
    return node.text


FORM = "application/x-www-form-urlencoded; charset=utf-8"


def _call(endpoint: str, fields: dict[str, str], headers: dict[str, str]) -> StsCredentials:
    """POST one query-API call and read the credentials out of its answer."""
    resp = net.request(
        "POST",
        endpoint + "/",
        body=urllib.parse.urlencode(fields).encode(),
        headers=headers,
        ca_variables=AWS_CA_VARIABLES,
    )
    try:
        root = ET.fromstring(resp.body)  # noqa: S314 - STS's answer, from the configured endpoint
    except ET.ParseError as exc:
        raise Retryable(
            f"STS answered HTTP {resp.status} with a body that is not XML", exc
        ) from exc
    if resp.status != 200:
        code = root.findtext(".//{*}Error/{*}Code") or f"HTTP{resp.status}"
        message = root.findtext(".//{*}Error/{*}Message") or ""
        raise StsError(code, message, resp.status)
    creds = ".//{*}Credentials/{*}"
    user = ".//{*}AssumedRoleUser/{*}"
    packed = root.findtext(".//{*}PackedPolicySize")
    return StsCredentials(
        access_key_id=_text(root, creds + "AccessKeyId"),
        secret_access_key=Secret(_text(root, creds + "SecretAccessKey")),
        session_token=Secret(_text(root, creds + "SessionToken")),
        expiration=parse_expiration(_text(root, creds + "Expiration")),
        assumed_role_arn=_text(root, user + "Arn"),
        assumed_role_id=_text(root, user + "AssumedRoleId"),
        packed_policy_size=int(packed) if packed and packed.isdigit() else None,
    )


def _policies(fields: dict[str, str], policy: str | None, policy_arns: tuple[str, ...]) -> None:
    if policy is not None:
        fields["Policy"] = policy
    for index, arn in enumerate(policy_arns, start=1):
        fields[f"PolicyArns.member.{index}.arn"] = arn


def assume_role_with_web_identity(
    endpoint: str,
    *,
    role_arn: str,
    session_name: str,
    web_identity_token: str,
    duration_seconds: int,
    policy: str | None = None,
    policy_arns: tuple[str, ...] = (),
) -> StsCredentials:
    """One unsigned call; raises `StsError` for an error answer, `Retryable` for transport
    trouble."""
    fields = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": API_VERSION,
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "WebIdentityToken": web_identity_token,
        "DurationSeconds": str(duration_seconds),
    }
    _policies(fields, policy, policy_arns)
    return _call(endpoint, fields, {"Content-Type": FORM})


def assume_role_fields(
    *,
    role_arn: str,
    session_name: str,
    duration_seconds: int,
    tags: tuple[tuple[str, str], ...] = (),
    transitive_tag_keys: tuple[str, ...] = (),
    source_identity: str | None = None,
    policy: str | None = None,
    policy_arns: tuple[str, ...] = (),
) -> dict[str, str]:
    """The query-API form of `AssumeRole`, as botocore's serializer writes it."""
    fields = {
        "Action": "AssumeRole",
        "Version": API_VERSION,
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": str(duration_seconds),
    }
    _policies(fields, policy, policy_arns)
    for index, (key, value) in enumerate(tags, start=1):
        fields[f"Tags.member.{index}.Key"] = key
        fields[f"Tags.member.{index}.Value"] = value
    for index, key in enumerate(transitive_tag_keys, start=1):
        fields[f"TransitiveTagKeys.member.{index}"] = key
    if source_identity is not None:
        fields["SourceIdentity"] = source_identity
    return fields


def assume_role(
    endpoint: str, region: str, signer: StsCredentials, fields: dict[str, str]
) -> StsCredentials:
    """`AssumeRole`, signed with SigV4 by botocore's own signer as `signer`.

    botocore's signer, without a botocore client: creating the client (loading endpoint and
    service models) costs ~70 ms that this call does not need.
    """
    from nhi_invoke.brokers.aws.botocore_clients import sigv4_headers  # noqa: PLC0415

    body = urllib.parse.urlencode(fields).encode()
    headers = sigv4_headers(endpoint + "/", body, region, signer, {"Content-Type": FORM})
    return _call(endpoint, fields, headers)

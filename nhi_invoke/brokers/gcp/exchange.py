"""The two GCP calls of an invocation, sent through `nhi_invoke.net`, the one HTTP seam.

The STS token exchange (RFC 8693, a form POST) and IAM Credentials' `generateAccessToken`
(a JSON POST with the federated token as bearer) are two plain HTTPS requests. google-auth's
`identity_pool` and `impersonated_credentials` send them too, but importing them costs ~120 ms
(asyncio, cryptography's EC bindings) on a path whose whole network exchange takes less.
So the requests are built here, field for field as google-auth 2.63 builds them (same URL,
form fields in the same order, JSON body, content types, bearer), and google-auth stays the
reference: `tests/unit/test_gcp_exchange.py` sends the same input through both against one
recording server and compares what arrived.

A transient failure raises `Retryable`; any other answer that is not a 200 raises
`GcpAnswer` with the status and the body, which the broker turns into the documented errors.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from nhi_invoke import net
from nhi_invoke.retry import Retryable

REASON_HEADER = "X-Goog-Request-Reason"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a type name
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a type name


class Minted(NamedTuple):
    """A token GCP answered, and when it stops working."""

    token: str
    expires_at: datetime


class GcpAnswer(Exception):
    """GCP answered, and not with a token: the status and the body as text."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


def exchange_token(
    sts_endpoint: str, audience: str, subject: str, scopes: tuple[str, ...], reason: str
) -> Minted:
    """The OIDC token exchanged at GCP STS for a federated access token."""
    # google-auth's order, empty fields left out (RFC 8693 section 2.1).
    fields = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "audience": audience,
        "scope": " ".join(scopes),
        "requested_token_type": ACCESS_TOKEN_TYPE,
        "subject_token": subject,
        "subject_token_type": JWT_TOKEN_TYPE,
    }
    asked_at = datetime.now(UTC)
    answer = _post(
        f"{sts_endpoint}/v1/token",
        urllib.parse.urlencode({k: v for k, v in fields.items() if v}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", REASON_HEADER: reason},
        "GCP STS",
    )
    token, lifetime = answer.get("access_token"), answer.get("expires_in")
    try:  # some token services send expires_in as a string
        seconds = int(lifetime) if isinstance(lifetime, int | str) else None
    except ValueError:
        seconds = None
    if not isinstance(token, str) or not token or seconds is None:
        raise Retryable("GCP STS answered without an access token and its lifetime")
    return Minted(token, asked_at + timedelta(seconds=seconds))


def generate_access_token(
    iamcredentials_endpoint: str,
    account: str,
    federated_token: str,
    scopes: tuple[str, ...],
    lifetime_seconds: int,
    reason: str,
) -> Minted:
    """A short-lived access token of `account`, asked for with the federated token."""
    body = {"delegates": [], "scope": list(scopes), "lifetime": f"{lifetime_seconds}s"}
    answer = _post(
        f"{iamcredentials_endpoint}/v1/projects/-/serviceAccounts/{account}:generateAccessToken",
        json.dumps(body).encode(),
        {
            "Content-Type": "application/json",
            "authorization": f"Bearer {federated_token}",
            REASON_HEADER: reason,
        },
        "IAM Credentials",
    )
    token, expire_time = answer.get("accessToken"), answer.get("expireTime")
    try:
        expires_at: datetime | None = datetime.fromisoformat(str(expire_time))
    except ValueError:
        expires_at = None
    if expires_at is not None and expires_at.tzinfo is None:  # IAM's times are UTC
        expires_at = expires_at.replace(tzinfo=UTC)
    if not isinstance(token, str) or not token or expires_at is None:
        raise Retryable("IAM Credentials answered without an access token and its expiry")
    return Minted(token, expires_at)


def _post(url: str, body: bytes, headers: dict[str, str], service: str) -> dict[str, object]:
    response = net.request("POST", url, body=body, headers=headers)
    text = response.body.decode("utf-8", "replace")
    if response.retryable:
        raise Retryable(f"HTTP {response.status} from {service}")
    if response.status != 200:
        raise GcpAnswer(response.status, text)
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise Retryable(f"{service} answered HTTP 200 without a JSON object")
    return answer

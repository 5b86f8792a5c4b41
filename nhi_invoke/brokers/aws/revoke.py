"""Per-session revocation: one inline deny policy on the target role, for one session.

STS cannot revoke one session. An inline policy on the role that denies everything to the
principal whose `aws:userid` is `ROLEID:SESSIONNAME` does, and leaves every other session of
the role untouched. Each session gets its own policy (no read-modify-write of a shared
document, so parallel steps cannot lose each other's revocations), named after the session's
expiry so that later revocations can prune the ones that no longer matter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nhi_invoke.brokers.aws.botocore_clients import error_code
from nhi_invoke.brokers.aws.plan import role_name
from nhi_invoke.brokers.aws.sts_query import retryable
from nhi_invoke.diagnostics import Log
from nhi_invoke.retry import Retryable

log = Log("revoke")
POLICY_PREFIX = "nhi-revoked-"
_EXPIRY_FORMAT = "%Y%m%dT%H%M%SZ"


def policy_name(principal_id: str, expires_at: datetime) -> str:
    """`nhi-revoked-<expiry>-<hash>`: within IAM's name rules, one per session."""
    digest = hashlib.sha256(principal_id.encode()).hexdigest()[:12]
    return f"{POLICY_PREFIX}{expires_at.astimezone(UTC).strftime(_EXPIRY_FORMAT)}-{digest}"


def expiry_of(name: str) -> datetime | None:
    """The session expiry a policy's name carries, or None if it is not ours."""
    if not name.startswith(POLICY_PREFIX):
        return None
    stamp = name[len(POLICY_PREFIX) :].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, _EXPIRY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def policy_document(principal_id: str) -> str:
    """Deny everything to exactly one session of the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "NhiInvokeRevokedSession",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:userid": principal_id}},
                }
            ],
        },
        separators=(",", ":"),
    )


class RevocationRefused(Exception):
    """IAM refused the deny policy (permissions, or the role's size limit after pruning)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class Revocation:
    """What one revocation did."""

    policy_name: str
    pruned: list[str] = field(default_factory=list)


class SessionRevoker:
    """Puts per-session deny policies on one role through an IAM client."""

    def __init__(self, iam: Any, role_arn: str, clock: Callable[[], datetime]) -> None:
        self.iam = iam
        self.role = role_name(role_arn)
        self.clock = clock

    def _call(self, operation: str, **kwargs: Any) -> Any:
        import botocore.exceptions  # noqa: PLC0415

        try:
            return getattr(self.iam, operation)(**kwargs)
        except botocore.exceptions.ClientError as exc:
            code, status = error_code(exc)
            if retryable(code, status):
                raise Retryable(f"{code} from IAM", exc) from exc
            raise RevocationRefused(code, str(exc)) from exc
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
        ) as exc:
            raise Retryable(f"{type(exc).__name__} talking to IAM", exc) from exc

    def prune(self) -> list[str]:
        """Delete this role's deny policies whose sessions have expired."""
        now = self.clock()
        names: list[str] = []
        marker: str | None = None
        while True:
            page = self._call(
                "list_role_policies", RoleName=self.role, **({"Marker": marker} if marker else {})
            )
            names += page.get("PolicyNames", [])
            if not page.get("IsTruncated"):
                break
            marker = page.get("Marker")
        pruned = []
        for name in names:
            expiry = expiry_of(name)
            if expiry is None or expiry > now:
                continue
            try:
                self._call("delete_role_policy", RoleName=self.role, PolicyName=name)
            except RevocationRefused as refused:
                if refused.code != "NoSuchEntity":  # another step pruned it first
                    raise
            pruned.append(name)
        return pruned

    def revoke(self, principal_id: str, expires_at: datetime) -> Revocation:
        """Prune, then deny this session; on IAM's size limit, prune again and retry once."""
        result = Revocation(policy_name(principal_id, expires_at), pruned=self.prune())
        document = policy_document(principal_id)
        try:
            self._call(
                "put_role_policy",
                RoleName=self.role,
                PolicyName=result.policy_name,
                PolicyDocument=document,
            )
        except RevocationRefused as refused:
            if refused.code != "LimitExceeded":
                raise
            log.debug("the role's inline policies are full; pruning and retrying once")
            result.pruned += self.prune()
            self._call(
                "put_role_policy",
                RoleName=self.role,
                PolicyName=result.policy_name,
                PolicyDocument=document,
            )
        return result

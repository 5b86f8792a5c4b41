"""The OIDC token, read without trusting it: decode, pre-flight checks, fingerprint.

Pure: no network, no clock (callers pass `now`). The cloud verifies the signature; these
checks only turn the failures we can predict into a clear exit 65 before any call is made.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nhi_invoke.errors import TokenError
from nhi_invoke.figures import duration, epoch

# The largest web identity token the clouds' token exchanges accept (STS: 20,000 characters).
MAX_TOKEN_LENGTH = 20_000
DEFAULT_LEEWAY_SECONDS = 60

# Claims safe to record and show: identity and provenance, never anything secret.
RECORDED_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "jti",
    "iat",
    "exp",
    "nbf",
    "repository",
    "repository_owner",
    "ref",
    "sha",
    "actor",
    "workflow_ref",
    "job_workflow_ref",
    "run_id",
    "run_attempt",
    "environment",
    "event_name",
    "project_path",
    "pipeline_id",
    "job_id",
    "namespace_path",
    "organization_id",
    "build_uuid",
    "pipeline_slug",
    "step_key",
)


@dataclass(frozen=True)
class Claims:
    """The decoded, unverified header and payload of a JWT."""

    header: Mapping[str, Any]
    payload: Mapping[str, Any]

    @property
    def audiences(self) -> tuple[str, ...]:
        aud = self.payload.get("aud")
        if isinstance(aud, str):
            return (aud,)
        if isinstance(aud, list):
            return tuple(a for a in aud if isinstance(a, str))
        return ()

    def recorded(self) -> dict[str, Any]:
        """The subset of claims that may appear in the ledger and in output."""
        return {k: self.payload[k] for k in RECORDED_CLAIMS if k in self.payload}


def fingerprint(secret: str) -> str:
    """A SHA-256 fingerprint that names a secret without revealing it."""
    import hashlib  # noqa: PLC0415 - OpenSSL's bindings when a run records a fingerprint

    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def _b64url_json(segment: str, part: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise TokenError(
            f"the OIDC token is not a JWT: its {part} is not base64url-encoded JSON",
            "pass the raw token (three dot-separated parts), not a file path or a quoted string",
        ) from exc
    if not isinstance(value, dict):
        raise TokenError(
            f"the OIDC token is not a JWT: its {part} is not a JSON object",
            "pass the raw token issued by your CI",
        )
    return value


def decode_unverified(token: str) -> Claims:
    """Decode a JWT's header and payload without checking its signature."""
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError(
            f"the OIDC token is {len(token)} characters, more than the {MAX_TOKEN_LENGTH} "
            "clouds accept",
            "pass the token your CI issued, unmodified",
        )
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenError(
            "the OIDC token is not a JWT (expected three dot-separated parts)",
            "pass the raw token issued by your CI",
        )
    header = _b64url_json(parts[0], "header")
    payload = _b64url_json(parts[1], "payload")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or not parts[2]:
        raise TokenError(
            "the OIDC token is unsigned (alg 'none' or no signature)",
            "use the signed token your CI issues; clouds refuse unsigned tokens",
        )
    return Claims(header=header, payload=payload)


def _numeric(claims: Claims, name: str) -> float | None:
    value = claims.payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(
            f"the OIDC token's '{name}' claim is not a number",
            "pass the token your CI issued, unmodified",
        )
    return float(value)


def check(
    claims: Claims,
    audience: str,
    now: float,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
    *,
    audience_flag: str | None = None,
) -> None:
    """Pre-flight checks a cloud would also make: expiry, not-before, audience.

    `audience_flag` names the option that sets the audience, for the hint."""
    exp = _numeric(claims, "exp")
    if exp is None:
        raise TokenError(
            "the OIDC token has no 'exp' claim", "use a token issued by your CI's OIDC provider"
        )
    if exp + leeway < now:
        raise TokenError(
            f"the OIDC token expired {duration(now - exp)} ago ({epoch(exp)})",
            "request a fresh token in the same step (CI tokens live minutes), or re-run the job",
        )
    nbf = _numeric(claims, "nbf")
    if nbf is not None and nbf - leeway > now:
        raise TokenError(
            f"the OIDC token is not valid for another {duration(nbf - now)} ('nbf' is "
            f"{epoch(nbf)})",
            "check the runner's clock (it must be within a minute of real time)",
        )
    audiences = claims.audiences
    if not audiences:
        raise TokenError(
            "the OIDC token has no 'aud' claim",
            f"request the token for the audience '{audience}'",
        )
    if audience not in audiences:
        shown = ", ".join(repr(a) for a in audiences[:3])
        option = f" ({audience_flag} {audiences[0]!r})" if audience_flag else ""
        raise TokenError(
            f"the OIDC token's audience is {shown}, not {audience!r}",
            f"request the token for {audience!r}, or pass the audience your cloud trusts" + option,
        )


def load_checked(
    token: str, audience: str, now: float, *, audience_flag: str | None = None
) -> Claims:
    """Decode and pre-flight check a token in one go."""
    claims = decode_unverified(token)
    check(claims, audience, now, audience_flag=audience_flag)
    return claims

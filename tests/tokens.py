"""Unsigned-but-well-formed OIDC tokens for unit tests (the checks never verify signatures)."""

from __future__ import annotations

import base64
import json
from typing import Any

NOW = 1_800_000_000.0


def segment(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def unsigned_token(header: dict[str, Any] | None = None, now: float = NOW, **claims: Any) -> str:
    """A JWT with an STS audience valid around `now`; a claim set to None is left out."""
    payload = {"aud": "sts.amazonaws.com", "exp": now + 300, "iat": now, "sub": "repo:o/r"}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return f"{segment(header or {'alg': 'RS256'})}.{segment(payload)}.c2ln"

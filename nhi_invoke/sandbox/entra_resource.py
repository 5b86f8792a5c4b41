"""The resource side of the Entra emulator: what an API such as ARM checks of the tokens the
emulator issues, so a step's command can prove which identity it holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from nhi_invoke.sandbox.entra_directory import ARM_AUDIENCES, SANDBOX_SUBSCRIPTION_ID


class ResourceApi:
    """`GET /__sandbox/whoami` and ARM's `GET /subscriptions`, for tokens signed by one key."""

    def __init__(self, public_key: RSAPublicKey, issuer_v2: Callable[[str], str]) -> None:
        self._public_key = public_key
        self._issuer_v2 = issuer_v2

    def whoami(
        self, authorization: str, audiences: Sequence[str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """What ARM checks of a bearer token (optionally its audience), and its claims."""

        def fail(code: str, message: str) -> tuple[int, dict[str, Any]]:
            return 401, {"error": {"code": code, "message": message}}

        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return fail("AuthenticationFailed", "The 'Authorization' header is missing.")
        try:
            claims = jwt.decode(
                token, self._public_key, algorithms=["RS256"], options={"verify_aud": False}
            )
        except jwt.ExpiredSignatureError:
            return fail("ExpiredAuthenticationToken", "The access token has expired.")
        except jwt.PyJWTError:
            return fail("InvalidAuthenticationToken", "The access token is invalid.")
        tid = str(claims.get("tid", ""))
        if claims.get("iss") not in (f"https://sts.windows.net/{tid}/", self._issuer_v2(tid)):
            return fail("InvalidAuthenticationToken", "The access token is from a wrong issuer.")
        if audiences is not None and claims.get("aud") not in audiences:
            return fail(
                "InvalidAuthenticationTokenAudience",
                "The access token has been obtained for wrong audience or resource "
                f"'{claims.get('aud')}'. It should exactly match with one of the allowed "
                f"audiences '{', '.join(audiences)}'.",
            )
        return 200, {"claims": claims, "expires_in": int(claims["exp"] - time.time())}

    def subscriptions(self, authorization: str) -> tuple[int, dict[str, Any]]:
        """ARM's `GET /subscriptions`: the sandbox subscription, for a management token (what
        `az login --identity` lists right after it gets its token)."""
        status, body = self.whoami(authorization, ARM_AUDIENCES)
        if status != 200:
            return status, body
        subscription = {
            "id": f"/subscriptions/{SANDBOX_SUBSCRIPTION_ID}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": SANDBOX_SUBSCRIPTION_ID,
            "tenantId": body["claims"]["tid"],
            "displayName": "nhi-invoke sandbox",
            "state": "Enabled",
        }
        return 200, {"value": [subscription], "count": {"type": "Total", "value": 1}}

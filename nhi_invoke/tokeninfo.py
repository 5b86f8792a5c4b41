"""`nhi-invoke token`: the ambient token's claims, its checks, optionally its signature."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nhi_invoke import net, oidc, settings
from nhi_invoke.ci import detect
from nhi_invoke.errors import TokenError, UnavailableError
from nhi_invoke.retry import Retryable, RetryPolicy, call_with_retries

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TokenReport:
    """What can be said about a token without showing it."""

    source: str
    claims: Mapping[str, Any]
    algorithm: str | None
    key_id: str | None
    fingerprint: str
    expires_in_seconds: int | None
    problem: TokenError | None
    signature: str | None  # how it was verified, when --verify


def _get_json(url: str, policy: RetryPolicy) -> dict[str, Any]:
    def attempt() -> dict[str, Any]:
        resp = net.request("GET", url, headers={"Accept": "application/json"})
        if resp.retryable:
            raise Retryable(f"HTTP {resp.status} from {url}")
        if resp.status != 200:
            raise TokenError(
                f"{url} answered HTTP {resp.status}",
                "check the token's issuer publishes OIDC discovery",
            )
        try:
            value = json.loads(resp.body)
        except ValueError as exc:
            raise TokenError(f"{url} did not answer JSON", "check the token's issuer") from exc
        if not isinstance(value, dict):
            raise TokenError(f"{url} did not answer a JSON object", "check the token's issuer")
        return value

    return call_with_retries(
        attempt,
        policy,
        on_give_up=lambda failure, tries: UnavailableError(
            f"could not fetch {url} after {tries} tries: {failure.what}", "check the network"
        ),
    )


def verify_signature(token: str, claims: oidc.Claims, audience: str, policy: RetryPolicy) -> str:
    """Check the signature against the issuer's JWKS, found through its discovery document."""
    import jwt  # noqa: PLC0415 - only --verify needs pyjwt and cryptography

    issuer = claims.payload.get("iss")
    parts = urllib.parse.urlsplit(issuer if isinstance(issuer, str) else "")
    if parts.scheme != "https" and not (
        parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    ):
        raise TokenError(
            f"the token's issuer {str(issuer)[:100]!r} is not an https URL",
            "only tokens from an https OIDC issuer can be verified",
        )
    assert isinstance(issuer, str)
    discovery = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", policy)
    if discovery.get("issuer") != issuer:
        raise TokenError(
            "the issuer's discovery document names another issuer",
            "the token's 'iss' must match its discovery document",
        )
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise TokenError(
            "the issuer's discovery document has no jwks_uri", "check the token's issuer"
        )
    try:
        key_set = jwt.PyJWKSet.from_dict(_get_json(jwks_uri, policy))
        kid = claims.header.get("kid")
        keys = [k for k in key_set.keys if kid is None or k.key_id == kid]
        if not keys:
            raise TokenError(
                f"the issuer publishes no key with kid {kid!r}",
                "the token was not signed by this issuer's current keys",
            )
        alg = str(claims.header.get("alg"))
        jwt.decode(
            token,
            keys[0].key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer,
            leeway=oidc.DEFAULT_LEEWAY_SECONDS,
        )
    except jwt.PyJWTError as exc:
        raise TokenError(
            f"signature check failed: {exc}",
            "the token was not issued by its claimed issuer, or was altered",
        ) from exc
    return f"valid ({claims.header.get('alg')}, kid {claims.header.get('kid')}, {jwks_uri})"


def inspect(
    environ: Mapping[str, str],
    *,
    audience: str,
    token_file: str | None,
    token_env: str | None,
    verify: bool,
) -> TokenReport:
    """Fetch the token the way `run` would, check it, and describe it."""
    policy = RetryPolicy()
    _context, provider = detect.detect(environ)
    source = detect.token_source(
        environ,
        provider,
        token_file=settings.outside_run("token_file", token_file, environ),
        token_env=settings.outside_run("token_env", token_env, environ),
        policy=policy,
    )
    token = source.fetch(audience)
    claims = oidc.decode_unverified(token)
    problem: TokenError | None = None
    try:
        # The option that sets the audience here is `token`'s own.
        oidc.check(claims, audience, time.time(), audience_flag="--audience")
    except TokenError as error:
        problem = error
    signature = None
    if verify and problem is None:
        signature = verify_signature(token, claims, audience, policy)
    exp = claims.payload.get("exp")
    return TokenReport(
        source=source.description,
        claims=claims.recorded(),
        algorithm=claims.header.get("alg"),
        key_id=claims.header.get("kid"),
        fingerprint=oidc.fingerprint(token),
        expires_in_seconds=int(exp - time.time()) if isinstance(exp, int | float) else None,
        problem=problem,
        signature=signature,
    )

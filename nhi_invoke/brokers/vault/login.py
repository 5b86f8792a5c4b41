"""The JWT login: the CI's OIDC token for a Vault token, and every refusal named with its
fix (refusal texts measured against OpenBao 2.7, docs/vault.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nhi_invoke import oidc
from nhi_invoke.brokers.grants import Secret, TokenSupplier
from nhi_invoke.brokers.vault.api import Answer, VaultApi, sealed_error
from nhi_invoke.diagnostics import Log
from nhi_invoke.errors import ConfigError, NhiError, RefusedError, TokenError, UnavailableError

log = Log("vault")
_DETAIL_LIMIT = 300
# A token that expired (or is not valid yet) between fetch and use: ask the CI again, once.
_STALE_TOKEN = ("token is expired", "not valid yet", "issued in the future")


@dataclass(frozen=True)
class Login:
    """What the login answered (the token is a Secret; the rest is public)."""

    token: Secret
    accessor: str
    policies: tuple[str, ...]
    token_policies: tuple[str, ...]
    metadata: dict[str, str]
    lease_duration: int
    renewable: bool
    entity_id: str | None
    token_type: str | None


def _claims(jwt: str) -> str:
    try:
        recorded = oidc.decode_unverified(jwt).recorded()
    except NhiError:
        return ""
    shown = {k: recorded[k] for k in ("sub", "aud", "repository", "ref") if k in recorded}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def _parse(answer: Answer) -> Login:
    auth = answer.section("auth")
    token, accessor = auth.get("client_token"), auth.get("accessor")
    if not isinstance(token, str) or not token or not isinstance(accessor, str):
        raise UnavailableError(
            "Vault answered the login without a token", "check --vault-addr: is it Vault?"
        )
    metadata: Any = auth.get("metadata")
    return Login(
        token=Secret(token),
        accessor=accessor,
        policies=tuple(str(p) for p in auth.get("policies") or ()),
        token_policies=tuple(str(p) for p in auth.get("token_policies") or ()),
        metadata={str(k): str(v) for k, v in (metadata or {}).items()},
        lease_duration=int(auth.get("lease_duration") or 0),
        renewable=bool(auth.get("renewable")),
        entity_id=auth.get("entity_id") or None,
        token_type=auth.get("token_type"),
    )


def refusal(api: VaultApi, answer: Answer, jwt: str) -> NhiError:
    """The login's failure, as the error to stop with (exit 65, 69, 77 or 78)."""
    plan = api.plan
    where = f"auth/{plan.auth_path}" + (f" in namespace {plan.namespace}" if plan.namespace else "")
    if answer.sealed:
        return sealed_error(plan, "the login")
    detail = answer.error_text[:_DETAIL_LIMIT]
    claims = _claims(jwt)
    if answer.status == 400:
        lowered = detail.lower()
        if "could not be found" in lowered and "role" in lowered:
            return ConfigError(
                f"Vault has no role {plan.role!r} at {where}",
                "check --vault-role (and --vault-auth-path, --vault-namespace)",
            )
        if "audience" in lowered:
            return RefusedError(
                f"Vault role {plan.role!r} refused the token's audience {plan.audience!r}: "
                f"{detail}",
                "set --vault-audience to one of the role's bound_audiences (or add "
                f"{plan.audience!r} to them)",
            )
        if any(stale in lowered for stale in _STALE_TOKEN):
            return TokenError(
                f"Vault refused the OIDC token as expired or not yet valid: {detail}",
                "check the clocks of the runner and of Vault",
            )
        if "claim" in lowered or "bound" in lowered:
            return RefusedError(
                f"Vault role {plan.role!r} refused the token's claims: {detail}"
                + (f" (token {claims})" if claims else ""),
                "the role's bound_claims (and bound_subject) must match these claims; "
                "see docs/vault.md for a role bound to a repository",
            )
        return RefusedError(
            f"Vault refused the login to role {plan.role!r}: {detail}"
            + (f" (token {claims})" if claims else ""),
            "check the role's bound_audiences, bound_claims and the auth method's issuer",
        )
    if answer.status in (403, 404, 405):
        return ConfigError(
            f"Vault has no JWT login at {where}/login (HTTP {answer.status}: {detail})",
            "check --vault-auth-path (the JWT auth method's mount) and --vault-namespace",
        )
    return UnavailableError(
        f"the Vault login answered HTTP {answer.status}: {detail}",
        f"check that {plan.address} is Vault or OpenBao",
    )


def login(api: VaultApi, tokens: TokenSupplier) -> Login:
    """Log in with the CI's OIDC token (a fresh one, once, if Vault finds it stale)."""
    plan = api.plan

    def attempt(fresh: bool) -> tuple[Answer, str]:
        jwt = tokens(fresh)
        body = {"role": plan.role, "jwt": jwt}
        return api.call("POST", plan.login_path, body=body, what="the Vault login"), jwt

    answer, jwt = attempt(False)
    if answer.status == 400 and any(s in answer.error_text.lower() for s in _STALE_TOKEN):
        log.debug("Vault found the OIDC token stale; fetching a fresh one")
        answer, jwt = attempt(True)
    if answer.status != 200:
        raise refusal(api, answer, jwt)
    return _parse(answer)

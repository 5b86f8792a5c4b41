"""The Vault/OpenBao broker: a JWT login with the CI's OIDC token gives this invocation its
own token; the `--vault-secret` paths are read with it; the command gets the token and the
values; while it runs, the token and the leases are renewed; when it ends, `revoke-self`
revokes the token, and Vault revokes every lease the token obtained (in the background).

The token is recorded the moment the login answers, and again (`credential.updated`) once
its TTL is cut to --vault-ttl and the secrets are read, so a failure at any later point still
revokes it. After a crash, `nhi-invoke revoke` revokes it by its accessor, given a token
allowed to (`--vault-token-file`, or VAULT_TOKEN).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from nhi_invoke.brokers.grants import (
    CHILD,
    Grant,
    GrantRecorder,
    Release,
    Secret,
    TokenSupplier,
    expiring,
)
from nhi_invoke.brokers.interface import CredentialBroker
from nhi_invoke.brokers.vault import reads
from nhi_invoke.brokers.vault.api import Answer, VaultApi, sealed_error
from nhi_invoke.brokers.vault.declaration import TOKEN_VARIABLES
from nhi_invoke.brokers.vault.login import Login, login
from nhi_invoke.brokers.vault.plan import REVOKE_ACCESSOR, REVOKE_SELF, VaultPlan
from nhi_invoke.brokers.vault.renewal import Held, Renewer
from nhi_invoke.diagnostics import Log
from nhi_invoke.errors import NhiError, RefusedError, UnavailableError
from nhi_invoke.retry import RetryOutcome, RetryPolicy

log = Log("vault")
# What the ledger says of the leases when the token is revoked (docs/vault.md): Vault marks
# them expired and its expiration manager revokes them right after, not before it answers.
LEASES_IN_BACKGROUND = "with the token, by Vault in the background"


def _now() -> datetime:
    return datetime.now(UTC)


def _since(moment: datetime) -> float:
    return round(max(0.0, (_now() - moment).total_seconds()), 3)


class VaultBroker(CredentialBroker):
    """Issues one invocation's Vault token, and the secrets read with it."""

    def __init__(self, plan: VaultPlan, policy: RetryPolicy) -> None:
        self.plan = plan
        self.retries = RetryOutcome()
        self.api = VaultApi(plan, policy, self.retries)
        self._login: Login | None = None
        self._renewer: Renewer | None = None
        self._values: dict[str, Secret] = {}
        self._secrets: list[dict[str, Any]] = []

    def _issued(self) -> tuple[Login, Renewer]:
        if self._login is None or self._renewer is None:
            raise RuntimeError("the Vault token is not issued yet")
        return self._login, self._renewer

    # Issue

    def issue(self, tokens: TokenSupplier, record: GrantRecorder) -> Grant:
        if self.plan.skip_verify:
            log.warning(self.plan.warnings()[0])
        answered = login(self.api, tokens)
        self._login = answered
        now = _now()
        held = Held(
            name="the Vault token",
            increment=min(self.plan.ttl_seconds, answered.lease_duration or self.plan.ttl_seconds),
            expires_at=now + timedelta(seconds=answered.lease_duration),
            renew_at=None,
        )
        self._renewer = Renewer(self.api, answered.token, held)
        first = self._grant()
        record(first)  # the token exists: recorded before anything else can fail
        try:
            self._cut_ttl(now)
            self._read_secrets()
        finally:
            # A shorter TTL, and what was read (leases included), even if a read failed.
            if (current := self._grant()) != first:
                record(current)
        if not answered.renewable:
            held.stop("the token is not renewable")
        return current

    def _cut_ttl(self, now: datetime) -> None:
        """A role may give a longer TTL than asked for: renew it down to --vault-ttl."""
        answered, renewer = self._issued()
        held, granted = renewer.held, answered.lease_duration
        if 0 < granted <= self.plan.ttl_seconds:
            held.schedule(now, granted)
            return
        answer = self.api.call(
            "POST",
            "auth/token/renew-self",
            answered.token,
            {"increment": self.plan.ttl_seconds},
            what="cutting the Vault token's TTL",
        )
        if answer.status == 200:
            held.schedule(_now(), int(answer.section("auth").get("lease_duration") or 0))
            return
        if answer.sealed:
            raise sealed_error(self.plan, "renew-self")
        held.schedule(now, granted)
        log.warning(
            f"the Vault token lives {granted} s, longer than --vault-ttl "
            f"{self.plan.ttl_seconds}, and could not be cut: renew-self answered HTTP "
            f"{answer.status} ({answer.error_text[:120]}); allow update on "
            "auth/token/renew-self, or lower the role's token_ttl"
        )

    def _read_secrets(self) -> None:
        token, renewer = self._issued()
        for path in self.plan.paths:
            answered = reads.fetch(self.api, token.token, path, token.policies, _now())
            if answered.lease is not None:
                lease = answered.lease
                held = Held(
                    name=f"the lease of {path}",
                    increment=lease.lease_duration,
                    expires_at=lease.expires_at,
                    renew_at=None,
                    lease=lease,
                )
                if lease.renewable and lease.lease_duration > 0:
                    held.schedule(_now(), lease.lease_duration)
                renewer.leases.append(held)
            requests = tuple(s for s in self.plan.secrets if s.path == path)
            self._values.update(reads.pick(answered, requests))
            self._secrets += [
                {
                    "path": path,
                    "field": s.field,
                    "variable": s.variable,
                    "version": answered.version,
                }
                for s in requests
            ]

    def _grant(self) -> Grant:
        """The token as it is now: its expiry, what was read with it, how renewal goes."""
        answered, renewer = self._issued()
        environment = dict.fromkeys(TOKEN_VARIABLES, answered.token) | self._values
        return Grant(
            broker=self.plan.broker,
            purpose=CHILD,
            principal=self.plan.principal,
            principal_id=answered.accessor,
            session_name=None,
            access_key_id=None,
            expires_at=renewer.held.expires_at,
            fingerprint=answered.token.fingerprint,
            environment=environment,
            details=self._details(),
        )

    def _details(self) -> dict[str, Any]:
        answered, renewer = self._issued()
        held = renewer.held
        return {
            "accessor": answered.accessor,
            "policies": list(answered.policies),
            "token_policies": list(answered.token_policies),
            "metadata": answered.metadata,
            "entity_id": answered.entity_id,
            "token_type": answered.token_type,
            "renewable": answered.renewable,
            "ttl_seconds": held.increment,
            "address": self.plan.address,
            "namespace": self.plan.namespace,
            "auth_path": self.plan.auth_path,
            "role": self.plan.role,
            "leases": [h.lease.as_dict() for h in renewer.leases if h.lease is not None],
            "secrets": self._secrets,
            "renewal": {
                "renewals": held.renewals,
                "ended": held.ended,
                "leases": [
                    {"lease_id": h.lease.lease_id, "renewals": h.renewals, "ended": h.ended}
                    for h in renewer.leases
                    if h.lease is not None and (h.renewals or h.ended)
                ],
            },
        }

    # Renewal while the command runs

    def next_renewal(self) -> datetime | None:
        return self._renewer.next_due() if self._renewer is not None else None

    def renew(self, record: GrantRecorder) -> tuple[str, ...]:
        if self._renewer is None:
            return ()
        changed, warnings = self._renewer.renew()
        if changed:
            record(self._grant())
        return tuple(warnings)

    # Release

    def release(
        self, grant: Grant, ended_at: datetime, tokens: TokenSupplier, record: GrantRecorder
    ) -> Release:
        token = grant.environment.get(TOKEN_VARIABLES[0])
        if token is None:  # rebuilt from the ledger: only its accessor is known
            return self.recover(grant, ended_at, tokens, record)
        try:
            answer = self.api.call(
                "POST", "auth/token/revoke-self", token, what="revoking the Vault token"
            )
        except NhiError as error:
            return expiring(grant, ended_at, error=error)
        leases = [lease["lease_id"] for lease in _leases(grant)]
        detail: dict[str, Any] = {
            "accessor": grant.principal_id,
            "lease_ids": leases,
            "leases_revoked": LEASES_IN_BACKGROUND,
        }
        if answer.status in (200, 204):
            return Release(REVOKE_SELF, _since(ended_at), detail)
        if answer.token_invalid:
            if grant.expires_at <= _now():
                return expiring(grant, ended_at, reason="it had expired before the command ended")
            # Someone holding the token (the command) revoked it already: it is as revoked.
            note = "Vault refused the token: it was already revoked (by the command?)"
            return Release(REVOKE_SELF, _since(ended_at), detail | {"note": note})
        return expiring(grant, ended_at, error=self._refusal(answer, "auth/token/revoke-self"))

    def recover(
        self, grant: Grant, ended_at: datetime, tokens: TokenSupplier, record: GrantRecorder
    ) -> Release:
        """A crashed invocation's token, by its accessor, with the token `nhi-invoke revoke`
        was given; without one it is only recorded, with its expiry."""
        accessor = grant.principal_id or str(grant.details.get("accessor", ""))
        if grant.expires_at <= _now():
            return expiring(grant, ended_at, reason="already expired")
        if self.plan.revoke_with is None:
            return expiring(
                grant,
                ended_at,
                reason="no Vault token to revoke it with: give nhi-invoke revoke "
                "--vault-token-file (or VAULT_TOKEN) with a token allowed to call "
                "auth/token/revoke-accessor",
            )
        try:
            answer = self.api.call(
                "POST",
                "auth/token/revoke-accessor",
                self.plan.revoke_with,
                {"accessor": accessor},
                what="revoking the Vault token by its accessor",
            )
        except NhiError as error:
            return expiring(grant, ended_at, error=error)
        detail: dict[str, Any] = {
            "accessor": accessor,
            "with": self.plan.revoke_with_source or "a token",
            "lease_ids": [lease["lease_id"] for lease in _leases(grant)],
            "leases_revoked": LEASES_IN_BACKGROUND,
        }
        if answer.status in (200, 204):
            if answer.warnings:  # "No token found with this accessor": revoked before
                detail["note"] = "; ".join(answer.warnings)
            return Release(REVOKE_ACCESSOR, _since(ended_at), detail)
        return expiring(grant, ended_at, error=self._refusal(answer, "auth/token/revoke-accessor"))

    def _refusal(self, answer: Answer, path: str) -> NhiError:
        if answer.sealed:
            return sealed_error(self.plan, path)
        if answer.status == 403:
            who = self.plan.revoke_with_source or "the invocation's token"
            return RefusedError(
                f"Vault refused {path} to {who} ({answer.error_text[:120]})",
                f'allow update on "{path}" in the policy of that token',
            )
        return UnavailableError(
            f"Vault answered HTTP {answer.status} to {path}: {answer.error_text[:200]}",
            f"check Vault at {self.plan.address}",
        )


def _leases(grant: Grant) -> list[dict[str, Any]]:
    found = grant.details.get("leases")
    return [lease for lease in found if isinstance(lease, dict)] if isinstance(found, list) else []

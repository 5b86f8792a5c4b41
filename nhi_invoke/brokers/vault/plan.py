"""The Vault part of a plan: the login, the reads, the token's lifetime, and what the
command gets. Holds no secret (a recovery's token to revoke with is never shown)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nhi_invoke.brokers.grants import Grant, Secret
from nhi_invoke.brokers.interface import BrokerPlan, ChildVariables
from nhi_invoke.brokers.vault.declaration import (
    ADDRESS_VARIABLES,
    AGENT_VARIABLES,
    DEFAULT_TTL,
    NAMESPACE_VARIABLES,
    TOKEN_VARIABLES,
)
from nhi_invoke.brokers.vault.secret_requests import SecretRequest

REVOKE_SELF = "revoke-self"
REVOKE_ACCESSOR = "revoke-accessor"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class VaultPlan(BrokerPlan):
    """What will be asked of Vault: a JWT login, the reads, then revoke-self."""

    broker: ClassVar[str] = "vault"

    address: str
    namespace: str | None
    auth_path: str
    role: str
    audience: str
    ttl_seconds: int
    secrets: tuple[SecretRequest, ...]
    ca_file: str | None = None
    ca_path: str | None = None
    skip_verify: bool = False
    revocation: str = REVOKE_SELF
    # Recovery only: a token allowed to call auth/token/revoke-accessor, and where it came from.
    revoke_with: Secret | None = field(default=None, repr=False, compare=False)
    revoke_with_source: str | None = None

    @property
    def principal(self) -> str:
        """The role, as the ledger names it (and `audit trace --principal` takes it)."""
        return f"vault:{self.auth_path}/role/{self.role}"

    @property
    def login_path(self) -> str:
        return f"auth/{self.auth_path}/login"

    @property
    def paths(self) -> tuple[str, ...]:
        """Each path to read, once, in the order first named."""
        return tuple(dict.fromkeys(s.path for s in self.secrets))

    def credential_lifetime(self) -> int:
        return self.ttl_seconds

    def _set(self) -> tuple[str, ...]:
        namespace = NAMESPACE_VARIABLES if self.namespace else ()
        return (
            *ADDRESS_VARIABLES,
            *TOKEN_VARIABLES,
            *namespace,
            *(s.variable for s in self.secrets),
        )

    def child_variables(self) -> ChildVariables:
        # Both families: the bao CLI prefers BAO_TOKEN and BAO_ADDR over VAULT_*, so an
        # inherited BAO_TOKEN would otherwise win over the invocation's token.
        return ChildVariables(
            set=self._set(),
            removed=(*NAMESPACE_VARIABLES, *AGENT_VARIABLES),
        )

    def child_environment(
        self, grants: Sequence[Grant], served: Mapping[str, str] | None
    ) -> dict[str, str]:
        env = dict.fromkeys(ADDRESS_VARIABLES, self.address)
        if self.namespace:
            env.update(dict.fromkeys(NAMESPACE_VARIABLES, self.namespace))
        for grant in grants:
            env.update(grant.child_environment())
        return env

    def endings(self) -> tuple[tuple[str, str], ...]:
        return (
            (
                f"Vault token ({self.principal})",
                "revoked when the command ends (auth/token/revoke-self); else expires at most "
                f"{self.ttl_seconds} s after its last renewal",
            ),
            (
                "Vault leases (dynamic secrets) obtained with the token",
                "revoked by Vault with the token, in the background",
            ),
        )

    def warnings(self) -> tuple[str, ...]:
        warnings = []
        if self.skip_verify:
            warnings.append(
                "VAULT_SKIP_VERIFY is set: Vault's TLS certificate is NOT checked, so anyone "
                "on the network path can take the OIDC token, the Vault token and the secrets; "
                "set VAULT_CACERT to the CA that signed Vault's certificate instead"
            )
        parts = urllib.parse.urlsplit(self.address)
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            warnings.append(
                f"{self.address} is plain http: the token and the secrets cross the network "
                "unencrypted; use https"
            )
        if self.ttl_seconds > DEFAULT_TTL:
            warnings.append(
                f"the Vault token may live {self.ttl_seconds} s at a time if nhi-invoke is "
                "killed before it can revoke it: keep --vault-ttl short (it is renewed while "
                "the command runs)"
            )
        return tuple(warnings)

    def rows(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = [
            ("Vault address", self.address),
            ("Vault OIDC audience", self.audience),
            ("Vault login", f"POST /v1/{self.login_path} (role {self.role})"),
        ]
        if self.namespace:
            rows.append(("Vault namespace", self.namespace))
        rows.append(
            (
                "Vault token TTL",
                f"at most {self.ttl_seconds} s at a time; renewed while the command runs, "
                "up to the role's max TTL",
            )
        )
        for path in self.paths:
            fields = ", ".join(f"{s.field} -> {s.variable}" for s in self.secrets if s.path == path)
            rows.append(("Vault read", f"GET /v1/{path}: {fields}"))
        rows.append(
            (
                "Vault revocation",
                "auth/token/revoke-self when the command ends; Vault then revokes every lease "
                "the token obtained",
            )
        )
        if self.ca_file or self.ca_path or self.skip_verify:
            rows.append(("Vault TLS", self._tls_text()))
        return rows

    def _tls_text(self) -> str:
        if self.skip_verify:
            return "certificate NOT verified (VAULT_SKIP_VERIFY)"
        trusted = [p for p in (self.ca_file, self.ca_path) if p]
        return "trusting " + ", ".join(trusted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "namespace": self.namespace,
            "auth_path": self.auth_path,
            "login_path": self.login_path,
            "role": self.role,
            "principal": self.principal,
            "audience": self.audience,
            "ttl_seconds": self.ttl_seconds,
            "reads": [
                {"path": s.path, "field": s.field, "variable": s.variable} for s in self.secrets
            ],
            "tls": {
                "ca_file": self.ca_file,
                "ca_path": self.ca_path,
                "skip_verify": self.skip_verify,
            },
            "revocation": self.revocation,
        }

    def started_fields(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "namespace": self.namespace,
            "auth_path": self.auth_path,
            "role": self.role,
            "audience": self.audience,
            "ttl_seconds": self.ttl_seconds,
        }

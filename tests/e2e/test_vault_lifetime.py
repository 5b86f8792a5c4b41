"""How long a Vault token lives: renewed (with its leases) while a long command runs, until
the role's max TTL ends renewal; and, after nhi-invoke itself is killed, revoked by its
accessor by `nhi-invoke revoke` given a token allowed to (or recorded with its expiry)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.sandbox.openbao import call
from nhi_invoke.sandbox.vault import (
    DatabaseEngine,
    VaultSandbox,
    policy_text,
    write_jwt_role,
)
from tests.e2e.runs import NHI, RUNS, Result, ledger_events, run_nhi
from tests.e2e.vault_runs import (
    child,
    database_secrets,
    last_state,
    report_of,
    revoke_outcomes,
    runs_begin,
    vault_env,
    vault_events,
    vault_run,
)
from tests.vault_fixtures import bao, database_roles, eventually, token_of

pytestmark = pytest.mark.e2e
__all__ = ["vault_env"]  # a fixture
BRIEF_ROLE = "brief"  # a database role whose leases live 4 s at a time


@pytest.fixture(scope="module")
def brief(vault: VaultSandbox, vault_database: DatabaseEngine) -> str:
    """A JWT role whose tokens live 4 s at a time (30 s at most), allowed database users
    whose leases live 4 s at a time: what a long command must keep renewing."""
    root, server = vault.root_token, vault_database.postgres
    connection = "sandbox-postgres-brief"
    call(
        vault.address,
        "POST",
        f"{vault_database.mount}/config/{connection}",
        root,
        {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": server.connection_url_template(),
            "username": server.superuser,
            "password": server.superuser_password.reveal(),
            "password_authentication": "scram-sha-256",
            "allowed_roles": [BRIEF_ROLE],
        },
    )
    call(
        vault.address,
        "POST",
        f"{vault_database.mount}/roles/{BRIEF_ROLE}",
        root,
        {
            "db_name": connection,
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                "VALID UNTIL '{{expiration}}';",
                'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";',
            ],
            "default_ttl": 4,
            "max_ttl": 60,
        },
    )
    creds = f"{vault_database.mount}/creds/{BRIEF_ROLE}"
    call(vault.address, "PUT", "sys/policies/acl/brief", root, {"policy": policy_text((creds,))})
    write_jwt_role(vault, "short-lived", token_ttl=4, token_max_ttl=30, policies=("brief",))
    write_jwt_role(vault, "capped", token_ttl=2, token_max_ttl=4)
    return creds


def test_a_command_that_outlives_the_tokens_ttl_keeps_working_through_renewal(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    brief: str,
    vault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi(
        [
            *vault_run(
                vault, f"{brief} username | PGUSER", f"{brief} password | PGPASSWORD",
                role="short-lived",
            ),
            *child(report, "psql", "every:0.5:10", "psql"),
        ],
        vault_env,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    results = report_of(report)["results"]
    first, lookups, last = results[0], results[1:-1], results[-1]
    assert first["code"] == last["code"] == 0, last["stderr"]
    assert last["stdout"] == first["stdout"]  # the same user, 10 s after its lease began
    assert len(lookups) >= 8
    assert [r["code"] for r in lookups] == [0] * len(lookups)
    state = last_state(vault_env)
    renewal = state["renewal"]
    assert renewal["renewals"] >= 3
    assert renewal["ended"] is None
    (lease,) = renewal["leases"]
    assert lease["renewals"] >= 3
    issued = vault_events(vault_env, "credential.issued")[0]
    assert state["expires_at"] > issued["expires_at"]
    assert "max TTL" not in result.stderr
    user = first["stdout"].split("|")[0]
    eventually(lambda: user not in database_roles(vault_database), f"{user} is dropped")


def test_the_roles_max_ttl_ends_renewal_and_the_ledger_says_when(
    vault: VaultSandbox, brief: str, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi([*vault_run(vault, role="capped"), *child(report, "every:0.5:7")], vault_env)
    assert result.code == 0, result.stderr
    codes = [r["code"] for r in report_of(report)["results"]]
    assert codes[0] == 0
    assert codes[-1] == 2  # expired: the role allows 4 s in all
    assert "the Vault token reached its max TTL and is not renewed again" in result.stderr
    ended = [e for e in vault_events(vault_env, "credential.updated") if e["renewal"]["ended"]]
    assert len(ended) == 1
    assert ended[0]["renewal"]["ended"].startswith("its max TTL: TTL of ")
    (closed,) = vault_events(vault_env, "credential.expiring")
    assert closed["reason"] == "it had expired before the command ended"
    assert closed["expires_at"] == ended[0]["expires_at"]
    assert closed["exposure_seconds"] == 0


def test_a_longer_ttl_than_asked_for_is_cut_down_at_once(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi([*vault_run(vault), "--vault-ttl", "60", *child(report, "lookup")], vault_env)
    assert result.code == 0, result.stderr
    (lookup,) = report_of(report)["results"]
    assert vault.token_ttl > 60  # the role gives 300 s
    assert 50 < lookup["data"]["data"]["ttl"] <= 60
    issued, cut = vault_events(vault_env, "credential.issued")[0], last_state(vault_env)
    assert issued["ttl_seconds"] == cut["ttl_seconds"] == 60
    assert cut["expires_at"] < issued["expires_at"]


@dataclass(frozen=True)
class Crashed:
    """An invocation whose nhi-invoke was killed with SIGKILL while its command ran."""

    token: str
    user: str | None
    invocation_id: str


@pytest.fixture
def root_token_file(vault: VaultSandbox, tmp_path: Path) -> Path:
    """An operator's token, in a private file written before any run (an input)."""
    path = tmp_path / "operator-token"
    path.write_text(vault.root_token.reveal())
    path.chmod(0o600)
    return path


def _crash(vault: VaultSandbox, env: dict[str, str], tmp_path: Path, *secrets: str) -> Crashed:
    runs_begin()
    ready, report = tmp_path / "child.pid", tmp_path / "crashed.json"
    actions = ("psql",) if secrets else ()
    proc = subprocess.Popen(
        [NHI, *vault_run(vault, *secrets), *child(report, *actions, f"pid:{ready}")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text():
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    os.killpg(int(ready.read_text()), signal.SIGKILL)  # orphaned in its own group
    stdout, stderr = proc.communicate(timeout=30)
    RUNS.append(Result(proc.returncode, stdout, stderr))
    seen = report_of(report)
    user = seen["results"][0]["stdout"].split("|")[0] if secrets else None
    started = next(e for e in ledger_events(env) if e["event"] == "invocation.started")
    return Crashed(seen["values"]["VAULT_TOKEN"], user, started["invocation_id"])


def _refused(vault: VaultSandbox, home: Path, token: str) -> bool:
    return bao(vault, home, "token", "lookup", token=token).returncode == 2


def test_after_a_kill_revoke_with_an_operator_token_revokes_the_orphan_and_its_user(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    vault_env: dict[str, str],
    root_token_file: Path,
    tmp_path: Path,
    home: Path,
) -> None:
    crashed = _crash(vault, vault_env, tmp_path, *database_secrets(vault_database))
    assert not _refused(vault, home, crashed.token)  # the orphan still works
    assert crashed.user in database_roles(vault_database)
    result = run_nhi(["revoke", "--json", "--vault-token-file", str(root_token_file)], vault_env)
    assert result.code == 0, result.stderr
    (outcome,) = revoke_outcomes(result.stdout)
    assert outcome["invocation_id"] == crashed.invocation_id
    assert outcome["action"] == "revoked"
    assert outcome["detail"].startswith("revoke-accessor: accessor=")
    assert _refused(vault, home, crashed.token)
    eventually(lambda: crashed.user not in database_roles(vault_database), "the user is dropped")
    (revoked,) = vault_events(vault_env, "credential.revoked")
    assert revoked["revocation"] == "revoke-accessor"
    assert revoked["recovered"] is True
    assert revoked["with"] == "--vault-token-file"
    assert revoked["lease_ids"] == [lease["lease_id"] for lease in last_state(vault_env)["leases"]]
    finished = ledger_events(vault_env)[-1]
    assert (finished["event"], finished["recovered"]) == ("invocation.finished", True)


def test_after_a_kill_revoke_without_a_token_records_the_ttl_as_the_exposure(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path, home: Path
) -> None:
    crashed = _crash(vault, vault_env, tmp_path)
    result = run_nhi(["revoke", "--json"], vault_env)
    assert result.code == 0, result.stderr
    (outcome,) = revoke_outcomes(result.stdout)
    assert outcome["action"] == "expiring"
    assert "no Vault token to revoke it with" in outcome["detail"]
    assert "--vault-token-file" in outcome["detail"]
    (closed,) = vault_events(vault_env, "credential.expiring")
    assert closed["recovered"] is True
    assert 0 < closed["exposure_seconds"] <= vault.token_ttl
    assert not _refused(vault, home, crashed.token)  # honest: it still works until then
    _revoke_by_root(vault, closed["principal_id"])


def test_after_a_kill_revoke_with_a_token_not_allowed_to_says_so_and_exits_77(
    vault: VaultSandbox,
    vault_env: dict[str, str],
    sandbox: dict[str, Any],
    tmp_path: Path,
    home: Path,
) -> None:
    crashed = _crash(vault, vault_env, tmp_path)
    ci_token = token_of(vault, sandbox)  # a CI role's token: no revoke-accessor
    result = run_nhi(["revoke"], vault_env | {"VAULT_TOKEN": ci_token})
    assert result.code == 77, result.stderr
    assert "Vault refused auth/token/revoke-accessor to VAULT_TOKEN" in result.stderr
    (closed,) = vault_events(vault_env, "credential.expiring")
    assert "revoke-accessor" in closed["revocation_failure"]
    assert not _refused(vault, home, crashed.token)
    _revoke_by_root(vault, closed["principal_id"])
    for token in (ci_token,):
        call(vault.address, "POST", "auth/token/revoke-self", _secret(token))


def _secret(value: str) -> Any:
    from nhi_invoke.brokers.grants import Secret  # noqa: PLC0415

    return Secret(value)


def _revoke_by_root(vault: VaultSandbox, accessor: str) -> None:
    call(
        vault.address,
        "POST",
        "auth/token/revoke-accessor",
        vault.root_token,
        {"accessor": accessor},
    )

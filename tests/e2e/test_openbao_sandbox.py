"""The OpenBao and PostgreSQL that the Vault broker stands on, proven with the clients a step
uses: a JWT login over HTTP with a real token of the sandbox issuer, the bao CLI, psql.

Each test pins a fact the broker relies on; docs/vault.md ("Reference: how OpenBao behaves,
measured") cites them.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.sandbox.emulators import Emulators
from nhi_invoke.sandbox.loopback import free_port
from nhi_invoke.sandbox.openbao import call
from nhi_invoke.sandbox.vault import (
    DatabaseEngine,
    VaultSandbox,
    policy_text,
    write_jwt_role,
)
from nhi_invoke.sandbox.vault_emulator import AUDIT_LOG_VARIABLE
from tests.vault_fixtures import (
    PERMISSION_DENIED,
    bao,
    creds,
    database_roles,
    eventually,
    login,
    missing,
    oidc_token,
    openbao_missing,
    psql,
    revoke,
    token_of,
    vault_http,
)

pytestmark = pytest.mark.e2e


def test_jwt_login_puts_the_steps_claims_in_the_token_metadata(
    vault: VaultSandbox, sandbox: dict[str, Any]
) -> None:
    environ = sandbox["environ"]
    answer = login(vault, sandbox)
    assert answer.status == 200, answer.errors
    auth = answer.body["auth"]
    assert auth["metadata"] == {
        "role": vault.role,
        "repository": environ["GITHUB_REPOSITORY"],
        "run_id": environ["GITHUB_RUN_ID"],
        "run_attempt": environ["GITHUB_RUN_ATTEMPT"],
        "workflow_ref": environ["GITHUB_WORKFLOW_REF"],
        "actor": environ["GITHUB_ACTOR"],
    }
    assert auth["policies"] == auth["token_policies"] == [vault.policy]
    assert auth["lease_duration"] == vault.token_ttl
    assert auth["renewable"] is True
    assert auth["token_type"] == "service"
    # OpenBao 2.7's formats, for the broker's masking and the leak sweep.
    assert re.fullmatch(r"s\.[A-Za-z0-9]{24}", auth["client_token"])
    assert re.fullmatch(r"[A-Za-z0-9]{24}", auth["accessor"])
    looked_up = vault_http(vault.address, "GET", "auth/token/lookup-self", auth["client_token"])
    assert looked_up.status == 200
    data = looked_up.body["data"]
    assert data["meta"] == auth["metadata"]
    assert data["accessor"] == auth["accessor"]
    assert data["path"] == f"auth/{vault.jwt_mount}/login"
    assert (
        data["display_name"]
        == f"jwt-repo:{environ['GITHUB_REPOSITORY']}:ref:{environ['GITHUB_REF']}"
    )
    assert 0 < data["ttl"] <= vault.token_ttl
    revoke(vault, auth["client_token"])


def test_bao_cli_reads_kv_v2_and_v1_with_the_token(
    vault: VaultSandbox, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    token = token_of(vault, sandbox)
    v2 = bao(vault, tmp_path, "kv", "get", "-format=json", vault.kv2.cli_path, token=token)
    assert v2.returncode == 0, v2.stderr
    expected = {name: value.reveal() for name, value in vault.kv2.fields.items()}
    assert json.loads(v2.stdout)["data"]["data"] == expected
    field = bao(vault, tmp_path, "kv", "get", "-field=api_key", vault.kv2.cli_path, token=token)
    assert field.stdout == vault.kv2.fields["api_key"].reveal()
    v1 = bao(vault, tmp_path, "kv", "get", "-format=json", vault.kv1.cli_path, token=token)
    assert v1.returncode == 0, v1.stderr
    expected = {name: value.reveal() for name, value in vault.kv1.fields.items()}
    assert json.loads(v1.stdout)["data"] == expected
    revoke(vault, token)


def test_database_creds_are_a_user_psql_connects_with(
    vault: VaultSandbox, vault_database: DatabaseEngine, sandbox: dict[str, Any]
) -> None:
    token = token_of(vault, sandbox)
    lease = creds(vault, vault_database, token)
    assert lease["lease_id"].startswith(f"{vault_database.creds_path}/")
    assert lease["renewable"] is True
    assert lease["lease_duration"] == vault_database.default_ttl
    user, password = lease["data"]["username"], lease["data"]["password"]
    # "v-", the token's display name (cut), the role, random, the Unix time.
    assert re.fullmatch(r"v-jwt-repo-readonly-[A-Za-z0-9]{20}-\d{10}", user)
    table = vault_database.postgres.sample_table
    query = f"SELECT current_user, name FROM {table} ORDER BY name"  # noqa: S608
    done = psql(vault_database, user, password, query)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"{user}|web", f"{user}|worker"]
    writes = psql(vault_database, user, password, f"DELETE FROM {table}")  # noqa: S608
    assert writes.returncode != 0
    assert f"permission denied for table {table}" in writes.stderr
    revoke(vault, token)


def test_revoke_self_refuses_the_token_and_drops_its_database_user(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    sandbox: dict[str, Any],
    tmp_path: Path,
) -> None:
    token = token_of(vault, sandbox)
    lease = creds(vault, vault_database, token)
    user, password = lease["data"]["username"], lease["data"]["password"]
    assert user in database_roles(vault_database)
    revoke(vault, token)
    lookup = bao(vault, tmp_path, "token", "lookup", token=token)
    assert lookup.returncode == 2
    assert "Code: 403. Errors:\n\n* permission denied" in lookup.stderr
    again = vault_http(vault.address, "POST", "auth/token/revoke-self", token)
    assert (again.status, again.errors) == (403, ["permission denied"])
    eventually(lambda: user not in database_roles(vault_database), "the user is dropped")
    refused = psql(vault_database, user, password, "SELECT 1")
    assert refused.returncode != 0
    assert f'password authentication failed for user "{user}"' in refused.stderr


def test_revoking_one_login_leaves_another_and_its_database_user_working(
    vault: VaultSandbox, vault_database: DatabaseEngine, sandbox: dict[str, Any]
) -> None:
    first, second = token_of(vault, sandbox), token_of(vault, sandbox)
    first_user = creds(vault, vault_database, first)["data"]["username"]
    second_lease = creds(vault, vault_database, second)
    revoke(vault, first)
    eventually(lambda: first_user not in database_roles(vault_database), "the first user goes")
    assert vault_http(vault.address, "GET", "auth/token/lookup-self", second).status == 200
    user, password = second_lease["data"]["username"], second_lease["data"]["password"]
    done = psql(vault_database, user, password, "SELECT current_user")
    assert done.stdout.strip() == user, done.stderr
    revoke(vault, second)


def test_renew_self_stops_at_the_roles_max_ttl_and_the_leases_die_with_the_token(
    vault: VaultSandbox, vault_database: DatabaseEngine, sandbox: dict[str, Any]
) -> None:
    write_jwt_role(vault, "ci-deploy-max-3s", token_ttl=1, token_max_ttl=3)
    token = token_of(vault, sandbox, "ci-deploy-max-3s")
    lease = creds(vault, vault_database, token)
    user = lease["data"]["username"]
    # The lease is not cut to the token's life: it is revoked when the token ends.
    assert lease["lease_duration"] == vault_database.default_ttl
    renewed = vault_http(vault.address, "POST", "auth/token/renew-self", token, {"increment": 60})
    assert renewed.status == 200, renewed.errors
    assert 0 < renewed.body["auth"]["lease_duration"] <= 3
    (warning,) = renewed.body["warnings"]
    assert re.fullmatch(
        r'TTL of "1m" exceeded the effective max_ttl of "[0-3]s"; TTL value is capped accordingly',
        warning,
    )

    def refused() -> bool:
        again = vault_http(vault.address, "POST", "auth/token/renew-self", token, {"increment": 60})
        return (again.status, again.errors) == (403, ["permission denied"])

    eventually(refused, "renew-self is refused once the max TTL has passed")
    eventually(lambda: user not in database_roles(vault_database), "the lease's user goes")


def test_lease_renewal_is_capped_by_the_database_roles_max_ttl(
    vault: VaultSandbox, vault_database: DatabaseEngine, sandbox: dict[str, Any]
) -> None:
    token = token_of(vault, sandbox)
    lease_id = creds(vault, vault_database, token)["lease_id"]
    body = {"lease_id": lease_id, "increment": 36000}
    renewed = vault_http(vault.address, "PUT", "sys/leases/renew", token, body)
    assert renewed.status == 200, renewed.errors
    assert renewed.body["lease_id"] == lease_id
    assert renewed.body["lease_duration"] == vault_database.max_ttl
    assert renewed.body["warnings"] == [
        'TTL of "10h" exceeded the effective max_ttl of "15m"; TTL value is capped accordingly'
    ]
    revoke(vault, token)
    root = vault.root_token.reveal()
    gone = vault_http(vault.address, "PUT", "sys/leases/renew", root, {"lease_id": lease_id})
    assert (gone.status, gone.errors) == (400, ["lease not found"])


def test_sys_leases_revoke_drops_the_user_before_it_answers(
    vault: VaultSandbox, vault_database: DatabaseEngine, sandbox: dict[str, Any]
) -> None:
    policy = policy_text(
        ("secret/data/ci/*", vault_database.creds_path), updatable=("sys/leases/revoke",)
    )
    body = {"policy": policy}
    call(vault.address, "PUT", "sys/policies/acl/nhi-ci-lease-revoke", vault.root_token, body)
    write_jwt_role(
        vault, "ci-lease-revoke", token_ttl=60, token_max_ttl=120, policies=["nhi-ci-lease-revoke"]
    )
    token = token_of(vault, sandbox, "ci-lease-revoke")
    lease = creds(vault, vault_database, token)
    answer = vault_http(
        vault.address, "PUT", "sys/leases/revoke", token, {"lease_id": lease["lease_id"]}
    )
    assert answer.status == 204, answer.errors
    # No polling: the revocation is synchronous (`sync` defaults to true).
    assert lease["data"]["username"] not in database_roles(vault_database)
    assert vault_http(vault.address, "GET", "auth/token/lookup-self", token).status == 200
    # The capability is not limited to the token's own leases, and unknown ids pass silently.
    other = token_of(vault, sandbox)
    others = creds(vault, vault_database, other)
    body = {"lease_id": others["lease_id"]}
    assert vault_http(vault.address, "PUT", "sys/leases/revoke", token, body).status == 204
    assert others["data"]["username"] not in database_roles(vault_database)
    body = {"lease_id": f"{vault_database.creds_path}/no-such-lease"}
    assert vault_http(vault.address, "PUT", "sys/leases/revoke", token, body).status == 204
    revoke(vault, token)
    revoke(vault, other)


def test_revoke_accessor_with_a_privileged_token_revokes_an_orphan(
    vault: VaultSandbox, vault_database: DatabaseEngine, sandbox: dict[str, Any]
) -> None:
    token = token_of(vault, sandbox)
    user = creds(vault, vault_database, token)["data"]["username"]
    accessor = vault_http(vault.address, "GET", "auth/token/lookup-self", token).body["data"][
        "accessor"
    ]
    other = token_of(vault, sandbox)
    by_child = vault_http(
        vault.address, "POST", "auth/token/revoke-accessor", other, {"accessor": accessor}
    )
    assert (by_child.status, by_child.errors) == (403, [PERMISSION_DENIED])
    root = vault.root_token.reveal()
    body = {"accessor": accessor}
    revoked = vault_http(vault.address, "POST", "auth/token/revoke-accessor", root, body)
    assert revoked.status == 204, revoked.errors
    assert vault_http(vault.address, "GET", "auth/token/lookup-self", token).status == 403
    eventually(lambda: user not in database_roles(vault_database), "the orphan's user goes")
    twice = vault_http(vault.address, "POST", "auth/token/revoke-accessor", root, body)
    assert (twice.status, twice.body["warnings"]) == (200, ["No token found with this accessor"])
    lookup = vault_http(vault.address, "POST", "auth/token/lookup-accessor", root, body)
    assert (lookup.status, lookup.errors) == (400, ["1 error occurred:\n\t* invalid accessor\n\n"])
    revoke(vault, other)


def test_bao_prefers_bao_token_and_bao_addr_over_the_vault_variables(
    vault: VaultSandbox, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    token = token_of(vault, sandbox)
    assert bao(vault, tmp_path, "token", "lookup", token=token).returncode == 0
    shadowed = bao(vault, tmp_path, "token", "lookup", token=token, extra={"BAO_TOKEN": "s.x"})
    assert shadowed.returncode == 2
    assert "Code: 403" in shadowed.stderr
    port = free_port()
    elsewhere = {"BAO_ADDR": f"http://127.0.0.1:{port}"}
    moved = bao(vault, tmp_path, "token", "lookup", token=token, extra=elsewhere)
    assert f"dial tcp 127.0.0.1:{port}: connect: connection refused" in moved.stderr
    revoke(vault, token)


def test_vault_token_beats_a_token_file_in_the_home_folder(
    vault: VaultSandbox, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    token = token_of(vault, sandbox)
    (tmp_path / ".vault-token").write_text("s.not-this-one")
    looked_up = bao(vault, tmp_path, "token", "lookup", "-format=json", token=token)
    assert looked_up.returncode == 0, looked_up.stderr
    assert json.loads(looked_up.stdout)["data"]["id"] == token
    revoke(vault, token)


def test_the_audit_log_names_the_run_and_the_accessor_never_the_token(
    vault: VaultSandbox, sandbox: dict[str, Any], vault_audit_log: Path
) -> None:
    answer = login(vault, sandbox)
    assert answer.status == 200
    auth = answer.body["auth"]
    revoke(vault, auth["client_token"])
    text = vault_audit_log.read_text()
    assert auth["client_token"] not in text
    logins = [
        entry
        for entry in map(json.loads, text.splitlines())
        if entry["type"] == "response"
        and entry["request"]["path"] == f"auth/{vault.jwt_mount}/login"
        and entry.get("auth", {}).get("accessor") == auth["accessor"]
    ]
    assert len(logins) == 1
    assert logins[0]["auth"]["metadata"]["run_id"] == sandbox["environ"]["GITHUB_RUN_ID"]
    assert logins[0]["auth"]["client_token"].startswith("hmac-sha256:")
    assert logins[0]["request"]["data"]["jwt"].startswith("hmac-sha256:")


def test_oidc_discovery_trusts_the_issuer_as_jwks_does(
    vault: VaultSandbox, sandbox: dict[str, Any]
) -> None:
    root, issuer = vault.root_token, sandbox["oidc_issuer"]
    call(vault.address, "POST", "sys/auth/jwt-discovery", root, {"type": "jwt"})
    trust = {"oidc_discovery_url": issuer, "bound_issuer": issuer}
    call(vault.address, "POST", "auth/jwt-discovery/config", root, trust)
    role = call(vault.address, "GET", f"auth/{vault.jwt_mount}/role/{vault.role}", root)["data"]
    call(vault.address, "POST", f"auth/jwt-discovery/role/{vault.role}", root, role)
    body = {"role": vault.role, "jwt": oidc_token(sandbox, vault.audience)}
    answer = vault_http(vault.address, "POST", "auth/jwt-discovery/login", body=body)
    assert answer.status == 200, answer.errors
    revoke(vault, answer.body["auth"]["client_token"])


def test_the_ready_file_names_the_issuers_jwks(sandbox: dict[str, Any]) -> None:
    discovery = f"{sandbox['oidc_issuer']}/.well-known/openid-configuration"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(discovery, timeout=30) as response:
        assert sandbox["oidc_jwks_url"] == json.load(response)["jwks_uri"]


def test_the_root_token_never_shows_in_a_repr(vault: VaultSandbox) -> None:
    shown = repr(vault) + str(vault)
    assert vault.root_token.reveal() not in shown
    assert all(value.reveal() not in shown for value in vault.kv2.fields.values())
    if vault.database is not None:
        assert vault.database.postgres.superuser_password.reveal() not in shown


def test_postgres_listens_on_loopback_only_with_passwords(
    vault_database: DatabaseEngine,
) -> None:
    server = vault_database.postgres
    password = server.superuser_password.reveal()
    sql = "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories')"
    done = psql(vault_database, server.superuser, password, sql)
    assert done.stdout.strip() == "127.0.0.1|", done.stderr
    wrong = psql(vault_database, server.superuser, "not-the-password", "SELECT 1")
    assert f'password authentication failed for user "{server.superuser}"' in wrong.stderr
    # The server's processes run as `postgres` when we are root (it refuses root), else as us.
    data = psql(vault_database, server.superuser, password, "SHOW data_directory").stdout.strip()
    postmaster = (Path(data) / "postmaster.pid").read_text().splitlines()[0]
    owner = os.stat(f"/proc/{postmaster}").st_uid
    assert owner == (pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid())


def test_the_emulators_start_openbao_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if reason := openbao_missing():
        missing(reason)
    monkeypatch.setenv(AUDIT_LOG_VARIABLE, str(tmp_path / "audit.log"))
    also = {"vault": "nhi_invoke.sandbox.vault_emulator"}
    with Emulators(os.environ, also=also) as emulators:
        described = emulators.describe()["vault"]
        address = described["address"]
        jwt = emulators.issuer.mint(described["audience"])
        body = {"role": described["role"], "jwt": jwt}
        answer = vault_http(address, "POST", f"auth/{described['jwt_mount']}/login", body=body)
        assert answer.status == 200, answer.errors
        token = answer.body["auth"]["client_token"]
        read = vault_http(address, "GET", "secret/data/ci/deploy", token)
        assert read.status == 200, read.errors
        assert described["audit_log"] == str(tmp_path / "audit.log")
        assert (tmp_path / "audit.log").stat().st_size > 0
    with pytest.raises(urllib.error.URLError):
        vault_http(address, "GET", "sys/health")

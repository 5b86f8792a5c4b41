"""The Vault broker against a real OpenBao (and PostgreSQL behind its database engine): the
command gets its own token and the secrets it asked for, uses them with the real clients (the
bao CLI, psql), and everything dies with the step; a second invocation at the same time is
untouched. (docs/vault.md)"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.sandbox.vault import DatabaseEngine, VaultSandbox
from tests.e2e.runs import ledger_events, run_nhi
from tests.e2e.vault_runs import (
    Background,
    child,
    database_secrets,
    last_state,
    report_of,
    runs_begin,
    vault_env,
    vault_events,
    vault_run,
    wait_for,
)
from tests.vault_fixtures import bao, database_roles, eventually, psql, vault_http

pytestmark = pytest.mark.e2e
__all__ = ["vault_env"]  # a fixture


def _lookup(vault: VaultSandbox, home: Path, token: str) -> subprocess.CompletedProcess[str]:
    return bao(vault, home, "token", "lookup", "-format=json", token=token)


def test_the_command_reads_kv_through_its_variables_and_its_own_token_dies_with_it(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path, home: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi(
        [
            *vault_run(
                vault,
                f"{vault.kv2.api_path} api_key | DEPLOY_KEY",
                f"{vault.kv1.api_path} password | LEGACY_PASSWORD",
            ),
            *child(report, "lookup", f"kv:{vault.kv2.cli_path}"),
        ],
        vault_env,
    )
    assert result.code == 0, result.stderr
    seen = report_of(report)
    assert seen["values"]["DEPLOY_KEY"] == vault.kv2.fields["api_key"].reveal()
    assert seen["values"]["LEGACY_PASSWORD"] == vault.kv1.fields["password"].reveal()
    token = seen["values"]["VAULT_TOKEN"]
    assert seen["values"]["BAO_TOKEN"] == token
    assert seen["addr"]["VAULT_ADDR"] == seen["addr"]["BAO_ADDR"] == vault.address
    # Its own calls with the bao CLI: the token of this step, and the KV secret.
    lookup, kv = seen["results"]
    assert lookup["code"] == 0, lookup["stderr"]
    data = lookup["data"]["data"]
    assert data["policies"] == [vault.policy]
    assert data["display_name"] == f"jwt-repo:{vault.repository}:ref:refs/heads/main"  # jwt-<sub>
    assert data["meta"]["repository"] == vault.repository
    assert data["meta"]["run_id"] == vault_env["GITHUB_RUN_ID"]
    assert kv["code"] == 0, kv["stderr"]
    assert kv["data"]["data"]["data"] == {k: v.reveal() for k, v in vault.kv2.fields.items()}
    # After the step, the token is refused.
    after = _lookup(vault, home, token)
    assert after.returncode == 2
    assert "permission denied" in after.stderr
    # Every secret was masked before the command started; the ledger names, never holds.
    assert {token, seen["values"]["DEPLOY_KEY"], seen["values"]["LEGACY_PASSWORD"]} <= result.masked
    (issued,) = vault_events(vault_env, "credential.issued")
    assert issued["accessor"] == data["accessor"]
    assert issued["principal"] == f"vault:{vault.jwt_mount}/role/{vault.role}"
    assert issued["principal_id"] == data["accessor"]
    assert issued["policies"] == [vault.policy]
    assert issued["metadata"]["repository"] == vault.repository
    state = last_state(vault_env)
    assert state["leases"] == []  # KV v1 and v2 hold no lease
    assert [(s["path"], s["field"], s["variable"]) for s in state["secrets"]] == [
        (vault.kv2.api_path, "api_key", "DEPLOY_KEY"),
        (vault.kv1.api_path, "password", "LEGACY_PASSWORD"),
    ]
    (revoked,) = vault_events(vault_env, "credential.revoked")
    assert revoked["revocation"] == "revoke-self"
    assert revoked["accessor"] == data["accessor"]


def test_the_command_connects_with_a_dynamic_user_that_is_dropped_after_the_step(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    vault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi(
        [*vault_run(vault, *database_secrets(vault_database)), *child(report, "psql")],
        vault_env,
    )
    assert result.code == 0, result.stderr
    seen = report_of(report)
    (connected,) = seen["results"]
    assert connected["code"] == 0, connected["stderr"]
    user = connected["stdout"].split("|")[0]
    assert connected["stdout"] == f"{user}|2"
    password = seen["values"]["PGPASSWORD"]
    assert password in result.masked
    # One read gave both halves: one lease, in the ledger.
    (lease,) = last_state(vault_env)["leases"]
    assert lease["path"] == vault_database.creds_path
    assert lease["lease_id"].startswith(f"{vault_database.creds_path}/")
    assert lease["lease_duration"] == vault_database.default_ttl
    (revoked,) = vault_events(vault_env, "credential.revoked")
    assert revoked["lease_ids"] == [lease["lease_id"]]
    assert revoked["leases_revoked"] == "with the token, by Vault in the background"
    # Vault drops the user right after revoke-self answers (in the background).
    eventually(lambda: user not in database_roles(vault_database), f"{user} is dropped")
    refused = psql(vault_database, user, password, "SELECT 1")
    assert refused.returncode != 0
    assert "password authentication failed" in refused.stderr


def test_ending_one_invocation_leaves_an_overlapping_one_working(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    vault_env: dict[str, str],
    tmp_path: Path,
    home: Path,
) -> None:
    runs_begin()
    flags = {name: tmp_path / name for name in ("a-up", "a-may-end", "b-up", "a-ended")}
    secrets = database_secrets(vault_database)
    first = Background(
        [
            *vault_run(vault, *secrets),
            *child(
                tmp_path / "a.json", "psql", f"touch:{flags['a-up']}", f"wait:{flags['a-may-end']}"
            ),
        ],
        vault_env,
    )
    wait_for(flags["a-up"])
    second = Background(
        [
            *vault_run(vault, *secrets),
            *child(
                tmp_path / "b.json",
                "psql",
                f"touch:{flags['b-up']}",
                f"wait:{flags['a-ended']}",
                "lookup",
                "psql",
            ),
        ],
        vault_env,
    )
    wait_for(flags["b-up"])
    flags["a-may-end"].touch()
    assert first.wait().code == 0
    a = report_of(tmp_path / "a.json")
    a_user = a["results"][0]["stdout"].split("|")[0]
    assert _lookup(vault, home, a["values"]["VAULT_TOKEN"]).returncode == 2
    eventually(lambda: a_user not in database_roles(vault_database), "the first user is dropped")
    flags["a-ended"].touch()
    ended = second.wait()
    assert ended.code == 0, ended.stderr
    b = report_of(tmp_path / "b.json")
    before, lookup, after = b["results"]
    assert lookup["code"] == 0, lookup["stderr"]
    assert after["code"] == 0, after["stderr"]
    b_user = before["stdout"].split("|")[0]
    assert b_user != a_user
    assert after["stdout"] == before["stdout"]  # the same user, still there
    eventually(lambda: b_user not in database_roles(vault_database), "the second user is dropped")


def test_an_inherited_token_is_never_used_nor_passed_on_and_beats_no_token_file(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path, home: Path
) -> None:
    root = vault.root_token.reveal()
    (home / ".vault-token").write_text(root)  # what `bao login` leaves behind
    inherited = vault_env | {
        "VAULT_TOKEN": root,
        "BAO_TOKEN": root,
        "BAO_ADDR": "http://127.0.0.1:9",
        "VAULT_AGENT_ADDR": "http://127.0.0.1:9",
    }
    report = tmp_path / "report.json"
    result = run_nhi([*vault_run(vault), *child(report, "lookup")], inherited)
    assert result.code == 0, result.stderr
    seen = report_of(report)
    assert seen["values"]["VAULT_TOKEN"] != root
    assert seen["values"]["BAO_TOKEN"] == seen["values"]["VAULT_TOKEN"]
    assert seen["addr"]["BAO_ADDR"] == vault.address
    assert "VAULT_AGENT_ADDR" not in seen["names"]
    (lookup,) = seen["results"]
    assert lookup["code"] == 0, lookup["stderr"]
    assert lookup["data"]["data"]["policies"] == [vault.policy]  # not root's
    assert (
        lookup["data"]["data"]["accessor"]
        == vault_events(inherited, "credential.issued")[0]["accessor"]
    )


def test_a_namespace_reaches_the_role_and_the_secrets_inside_it(
    vault: VaultSandbox, vault_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    namespace = f"team-{tmp_path.name[-8:].lower().replace('_', '-')}"
    root = vault.root_token
    vault_http(vault.address, "POST", f"sys/namespaces/{namespace}", root.reveal(), {})
    inside = {"X-Vault-Namespace": namespace}
    for method, path, body in (
        ("POST", "sys/auth/jwt", {"type": "jwt"}),
        (
            "POST",
            "auth/jwt/config",
            {"jwks_url": sandbox["oidc_jwks_url"], "bound_issuer": sandbox["oidc_issuer"]},
        ),
        ("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "1"}}),
        ("POST", "kv/team", {"motto": "namespaced"}),
        ("PUT", "sys/policies/acl/team", {"policy": 'path "kv/*" { capabilities = ["read"] }\n'
            'path "auth/token/revoke-self" { capabilities = ["update"] }\n'}),
        (
            "POST",
            "auth/jwt/role/team-deploy",
            {
                "role_type": "jwt",
                "bound_audiences": [vault.audience],
                "bound_claims": {"repository": vault.repository},
                "user_claim": "sub",
                "token_policies": ["team"],
                "token_no_default_policy": True,
                "token_ttl": 120,
            },
        ),
    ):  # fmt: skip
        answer = _namespaced(vault, method, path, body, inside)
        assert answer < 300, (path, answer)
    report = tmp_path / "report.json"
    result = run_nhi(
        [
            *vault_run(vault, "kv/team motto | MOTTO", role="team-deploy"),
            "--vault-namespace",
            namespace,
            *child(report, "kv:kv/team"),
        ],
        vault_env,
    )
    assert result.code == 0, result.stderr
    seen = report_of(report)
    assert seen["addr"]["VAULT_NAMESPACE"] == namespace
    assert "MOTTO" in seen["names"]
    (kv,) = seen["results"]
    assert kv["code"] == 0, kv["stderr"]
    assert kv["data"]["data"] == {"motto": "namespaced"}
    assert last_state(vault_env)["namespace"] == namespace
    assert vault_events(vault_env, "credential.revoked")


def _namespaced(
    vault: VaultSandbox, method: str, path: str, body: Any, headers: dict[str, str]
) -> int:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    request = urllib.request.Request(
        f"{vault.address}/v1/{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"X-Vault-Token": vault.root_token.reveal(), **headers},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_signal_to_nhi_invoke_still_revokes_the_token(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path, home: Path
) -> None:
    runs_begin()
    ready = tmp_path / "pid"
    running = Background(
        [*vault_run(vault), *child(tmp_path / "r.json", f"pid:{ready}")], vault_env
    )
    wait_for(ready)
    running.process.send_signal(signal.SIGTERM)
    ended = running.wait()
    assert ended.code == 128 + signal.SIGTERM
    token = report_of(tmp_path / "r.json")["values"]["VAULT_TOKEN"]
    assert _lookup(vault, home, token).returncode == 2
    assert [e["revocation"] for e in vault_events(vault_env, "credential.revoked")] == [
        "revoke-self"
    ]
    assert ledger_events(vault_env)[-1]["event"] == "invocation.finished"


def test_values_that_are_not_strings_come_as_json_and_each_line_of_a_secret_is_masked(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    first, second = (f"line-{n}-{tmp_path.name[-6:]}" for n in ("one", "two"))
    shapes = {"port": 5432, "hosts": ["a", "b"], "pem": f"{first}\n{second}"}
    vault_http(vault.address, "POST", "kv1/ci/shapes", vault.root_token.reveal(), shapes)
    report = tmp_path / "report.json"
    secrets = [f"kv1/ci/shapes {field}" for field in ("port", "hosts", "pem")]
    env = vault_env | {"NHI_TEST_SECRETS": "PORT,HOSTS,PEM"}
    result = run_nhi([*vault_run(vault, *secrets), *child(report)], env)
    assert result.code == 0, result.stderr
    values = report_of(report)["values"]
    assert (values["PORT"], values["HOSTS"], values["PEM"]) == ("5432", '["a","b"]', shapes["pem"])
    assert {first, second} <= result.masked


@pytest.mark.parametrize("ending", ["exit:3", "kill"])
def test_the_commands_exit_code_comes_back_and_the_token_is_revoked_either_way(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path, home: Path, ending: str
) -> None:
    report = tmp_path / "report.json"
    if ending == "kill":  # the command killed by a signal: 128 + 9
        command = ["--", "sh", "-c", f"{shlex.join(child(report)[1:])} && kill -9 $$"]
    else:
        command = child(report, ending)
    result = run_nhi([*vault_run(vault), *command], vault_env)
    assert result.code == (3 if ending == "exit:3" else 128 + signal.SIGKILL), result.stderr
    token = report_of(report)["values"]["VAULT_TOKEN"]
    assert _lookup(vault, home, token).returncode == 2
    assert [e["revocation"] for e in vault_events(vault_env, "credential.revoked")] == [
        "revoke-self"
    ]

"""A hostile command against the Vault broker: it wants its token to outlive the step, or
another invocation's secrets. What it can do, and what stops it (docs/vault.md, "What a
hostile command can do")."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from nhi_invoke.sandbox.openbao import call
from nhi_invoke.sandbox.vault import DatabaseEngine, VaultSandbox, write_jwt_role
from tests.e2e.runs import run_nhi
from tests.e2e.vault_runs import (
    CHILD_VAULT,
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
from tests.vault_fixtures import bao, database_roles, eventually

pytestmark = pytest.mark.e2e
__all__ = ["vault_env"]  # a fixture
STRICT = "ci-strict"  # the policy docs/vault.md recommends: no lease capability at all


@pytest.fixture(scope="module")
def strict(vault: VaultSandbox, vault_database: DatabaseEngine) -> str:
    readable = (vault.kv2.api_path, vault_database.creds_path)
    text = "".join(
        f'path "{path}" {{\n  capabilities = ["{can}"]\n}}\n'
        for path, can in (
            *((p, "read") for p in readable),
            ("auth/token/lookup-self", "read"),
            ("auth/token/renew-self", "update"),
            ("auth/token/revoke-self", "update"),
        )
    )
    assert "sys/leases" not in text
    call(vault.address, "PUT", f"sys/policies/acl/{STRICT}", vault.root_token, {"policy": text})
    write_jwt_role(vault, STRICT, token_ttl=300, token_max_ttl=1800, policies=(STRICT,))
    return STRICT


def test_a_process_the_command_leaves_behind_cannot_use_the_token_after_the_step(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    later = tmp_path / "later.json"
    script = (
        "import os, subprocess, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(1.5)\n"
        "    done = subprocess.run([os.environ['NHI_TEST_BAO'], 'token', 'lookup'],\n"
        "                          capture_output=True, text=True)\n"
        f"    open({str(later)!r}, 'w').write(str(done.returncode) + done.stderr)\n"
        "    os._exit(0)\n"
    )
    result = run_nhi([*vault_run(vault), "--", sys.executable, "-c", script], vault_env)
    assert result.code == 0, result.stderr
    wait_for(later)
    time.sleep(0.2)
    assert later.read_text().startswith("2")
    assert "permission denied" in later.read_text()


def test_the_command_cannot_mint_a_token_that_outlives_the_step(
    vault: VaultSandbox, strict: str, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    attempts = [
        "call:POST:auth/token/create:" + json.dumps({"ttl": "24h", "policies": [strict]}),
        "call:POST:auth/token/create-orphan:" + json.dumps({"ttl": "24h"}),
        "call:POST:auth/token/create/" + strict + ":{}",
    ]
    result = run_nhi([*vault_run(vault, role=strict), *child(report, *attempts)], vault_env)
    assert result.code == 0, result.stderr
    assert [r["status"] for r in report_of(report)["results"]] == [403, 403, 403]


def test_another_invocations_accessor_and_lease_from_the_ledger_get_the_command_nothing(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    strict: str,
    vault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    runs_begin()
    up, may_end = tmp_path / "victim-up", tmp_path / "victim-may-end"
    victim = Background(
        [
            *vault_run(vault, *database_secrets(vault_database), role=strict),
            *child(tmp_path / "victim.json", "psql", f"touch:{up}", f"wait:{may_end}", "psql"),
        ],
        vault_env,
    )
    wait_for(up)
    # What the shared ledger tells every later step of the job: the accessor, the lease id.
    known = last_state(vault_env)
    accessor, (lease,) = known["accessor"], known["leases"]
    report = tmp_path / "hostile.json"
    attacks = [
        f"call:POST:auth/token/lookup-accessor:{json.dumps({'accessor': accessor})}",
        f"call:POST:auth/token/revoke-accessor:{json.dumps({'accessor': accessor})}",
        f"call:PUT:sys/leases/lookup:{json.dumps({'lease_id': lease['lease_id']})}",
        f"call:PUT:sys/leases/revoke:{json.dumps({'lease_id': lease['lease_id']})}",
        f"call:PUT:sys/leases/renew:{json.dumps({'lease_id': lease['lease_id'], 'increment': 1})}",
    ]
    hostile = run_nhi([*vault_run(vault, role=strict), *child(report, *attacks)], vault_env)
    assert hostile.code == 0, hostile.stderr
    assert [r["status"] for r in report_of(report)["results"]] == [403] * len(attacks)
    time.sleep(1.5)  # had the lease been cut to 1 s, it would be gone by now
    may_end.touch()
    assert victim.wait().code == 0
    before, after = report_of(tmp_path / "victim.json")["results"]
    assert after["code"] == 0, after["stderr"]
    assert after["stdout"] == before["stdout"]


def test_with_sys_leases_renew_in_the_policy_a_command_can_cut_anothers_lease(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    vault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Why docs/vault.md recommends a policy without it: Vault does not tie the capability to
    the caller's own leases (the sandbox's `nhi-ci` policy grants it, to show renewal)."""
    runs_begin()
    up, may_end = tmp_path / "victim-up", tmp_path / "victim-may-end"
    victim = Background(
        [
            *vault_run(vault, *database_secrets(vault_database)),
            *child(tmp_path / "victim.json", "psql", f"touch:{up}", f"wait:{may_end}", "psql"),
        ],
        vault_env,
    )
    wait_for(up)
    (lease,) = last_state(vault_env)["leases"]
    cut = "call:PUT:sys/leases/renew:" + json.dumps({"lease_id": lease["lease_id"], "increment": 1})
    report = tmp_path / "hostile.json"
    hostile = run_nhi([*vault_run(vault), *child(report, cut)], vault_env)
    assert hostile.code == 0, hostile.stderr
    (answer,) = report_of(report)["results"]
    assert (answer["status"], answer["body"]["lease_duration"]) == (200, 1)
    before = report_of(tmp_path / "victim.json")["results"][0]["stdout"].split("|")[0]
    eventually(lambda: before not in database_roles(vault_database), "the cut lease ends")
    may_end.touch()
    assert victim.wait().code == 0
    after = report_of(tmp_path / "victim.json")["results"][1]
    assert after["code"] != 0  # the victim's database user is gone, mid-step


def test_renewing_to_the_max_then_killing_nhi_invoke_leaves_the_token_until_recovery(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    vault_env: dict[str, str],
    tmp_path: Path,
    home: Path,
) -> None:
    token_file = tmp_path / "operator-token"
    token_file.write_text(vault.root_token.reveal())
    report = tmp_path / "report.json"
    renew = "call:POST:auth/token/renew-self:" + json.dumps({"increment": 86400})
    # The command renews its token as far as the role allows, then kills nhi-invoke.
    command = (
        "import os, signal, subprocess, sys\n"
        f"subprocess.run([sys.executable, {CHILD_VAULT!r}, {str(report)!r}, 'psql', {renew!r}])\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"
    )
    args = vault_run(vault, *database_secrets(vault_database))
    killed = run_nhi([*args, "--", sys.executable, "-c", command], vault_env)
    assert killed.code == -9
    seen = report_of(report)
    psql, renewed = seen["results"]
    assert renewed["status"] == 200
    assert vault.token_ttl < renewed["body"]["auth"]["lease_duration"] <= vault.token_max_ttl
    token, user = seen["values"]["VAULT_TOKEN"], psql["stdout"].split("|")[0]
    # Honest: nothing revoked it; it would live until the role's max TTL.
    assert bao(vault, home, "token", "lookup", token=token).returncode == 0
    assert vault_events(vault_env, "credential.revoked") == []
    recovered = run_nhi(["revoke", "--vault-token-file", str(token_file)], vault_env)
    assert recovered.code == 0, recovered.stderr
    assert bao(vault, home, "token", "lookup", token=token).returncode == 2
    eventually(lambda: user not in database_roles(vault_database), "the user is dropped")


def test_a_command_that_revokes_its_own_token_early_is_recorded_as_revoked(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi(
        [*vault_run(vault), *child(report, "call:POST:auth/token/revoke-self")], vault_env
    )
    assert result.code == 0, result.stderr
    assert report_of(report)["results"][0]["status"] == 204
    (revoked,) = vault_events(vault_env, "credential.revoked")
    assert revoked["note"] == "Vault refused the token: it was already revoked (by the command?)"


def test_a_repositorys_config_file_cannot_choose_where_the_token_goes(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    for key in ("vault-addr", "vault-audience"):
        (tmp_path / "nhi-invoke.toml").write_text(f'[defaults]\n{key} = "https://evil.example"\n')
        result = run_nhi([*vault_run(vault), "--", "true"], vault_env, cwd=str(tmp_path))
        assert result.code == 78, result.stderr
        assert f"{key} may not be set in the config file" in result.stderr

"""The Python API with the Vault broker, against the session's OpenBao: the `vault_*` keywords
are `run`'s options; a task's token and secrets reach its tools through `inv.env`; the token is
renewed while the block outlives its TTL (as `run` renews it while the command runs) and is
revoked, with its leases, when the block ends."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import nhi_invoke
from nhi_invoke.sandbox.vault import VaultSandbox, write_jwt_role
from tests.e2e.agent_runtime import runtime_environ, token_supplier
from tests.e2e.runs import note_environment, note_secrets
from tests.vault_fixtures import vault_http

pytestmark = pytest.mark.e2e
BRIEF_TTL = 3  # seconds a token of the task's role lives unless renewed


def _events(environ: dict[str, str], invocation_id: str, event: str) -> list[dict[str, Any]]:
    lines = Path(environ["NHI_LEDGER"]).read_text().splitlines()
    return [
        e
        for e in map(json.loads, lines)
        if e["invocation_id"] == invocation_id and e["event"] == event
    ]


def _lookup(vault: VaultSandbox, token: str) -> int:
    return vault_http(vault.address, "GET", "auth/token/lookup-self", token).status


def test_a_vault_task_is_renewed_while_its_block_runs_and_revoked_when_it_ends(
    vault: VaultSandbox, sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    write_jwt_role(vault, "agent-brief", token_ttl=BRIEF_TTL, token_max_ttl=120)
    environ = runtime_environ(base_env, sandbox, tmp_path)
    with nhi_invoke.invocation(
        task_id="case-vault",
        agent="support-bot",
        vault_addr=vault.address,
        vault_role="agent-brief",
        vault_secrets=[f"{vault.kv2.api_path} api_key | DEPLOY_KEY"],
        token=token_supplier(sandbox),
        environ=environ,
    ) as inv:
        env = inv.env
        note_environment(env)
        note_secrets(env["DEPLOY_KEY"])
        token = env["VAULT_TOKEN"]
        assert env["VAULT_ADDR"] == vault.address
        assert env["DEPLOY_KEY"] == vault.kv2.fields["api_key"].reveal()
        assert inv.principals["vault"]
        # Outlive the token's TTL twice over: it still works only because it was renewed.
        for _ in range(4 * BRIEF_TTL):
            time.sleep(0.5)
            assert _lookup(vault, token) == 200
    assert _lookup(vault, token) == 403  # revoked when the block ended
    renewed = _events(environ, inv.invocation_id, "credential.updated")
    assert renewed, "the task's token was never renewed"
    assert renewed[-1]["renewal"]["renewals"] >= 2
    (revoked,) = _events(environ, inv.invocation_id, "credential.revoked")
    assert revoked["cloud"] == "vault"
    (exited,) = _events(environ, inv.invocation_id, "command.exited")
    assert exited["ended_by"] == "return"
    (started,) = _events(environ, inv.invocation_id, "invocation.started")
    assert started["task"] == {"id": "case-vault", "agent": "support-bot"}

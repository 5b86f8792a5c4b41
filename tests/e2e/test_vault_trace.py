"""`audit trace --vault-audit` on the audit log of a real OpenBao that a real `nhi-invoke run`
used: every request of the invocation (its login, its reads, the command's own calls with the
token, its revocation) is attributed to it by the token's accessor (issue 20's "Vault: a real
OpenBao file audit log from the Vault issue's tests attributes its requests by accessor")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nhi_invoke.sandbox.vault import VaultSandbox
from tests.e2e.runs import ledger_path, run_nhi
from tests.e2e.vault_runs import child, report_of, vault_env, vault_events, vault_run

pytestmark = pytest.mark.e2e
__all__ = ["vault_env"]  # a fixture


def test_the_audit_log_attributes_the_invocations_requests_by_accessor(
    vault: VaultSandbox,
    vault_audit_log: Path,
    vault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"
    secret = f"{vault.kv2.api_path} api_key | DEPLOY_KEY"
    run = run_nhi(
        [*vault_run(vault, secret), *child(report, "lookup", f"kv:{vault.kv2.cli_path}")],
        vault_env,
    )
    assert run.code == 0, run.stderr
    assert report_of(report)["results"][0]["code"] == 0
    (issued,) = vault_events(vault_env, "credential.issued")
    invocation = issued["invocation_id"]
    result = run_nhi(
        [
            "audit", "trace", str(ledger_path(vault_env)), "--vault-audit", str(vault_audit_log),
            "--invocation", invocation, "--json",
        ],
        vault_env,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr  # nothing used after the end
    ours = [e for e in json.loads(result.stdout)["events"] if e["invocation_id"] == invocation]
    by_resource = {(e["resource"], e["match"]) for e in ours}
    assert ("auth/jwt/login", "minted") in by_resource
    for resource in (vault.kv2.api_path, "auth/token/lookup-self", "auth/token/revoke-self"):
        assert (resource, "accessor") in by_resource, resource
    assert [e for e in ours if e["after_end"]] == []
    (revocation,) = [e for e in ours if e["resource"] == "auth/token/revoke-self"]
    assert revocation["note"] == "nhi-invoke's revocation at the end of the invocation"

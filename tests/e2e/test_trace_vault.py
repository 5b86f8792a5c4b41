"""`audit trace` against a real OpenBao: its file audit devices (one HMACs accessors, one does
not), a JWT login with the sandbox's OIDC token as the Vault broker will make it, requests by
the bao CLI, and the ledger line written by the ledger writer with the token's real accessor."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.ledger.records import rfc3339
from nhi_invoke.ledger.store import Ledger
from tests.e2e.conftest import Result, run_nhi
from tests.e2e.trace_openbao import Bao, serve_bao

pytestmark = pytest.mark.e2e
ROLE = "ci-deploy"
PRINCIPAL = f"vault:jwt/role/{ROLE}"


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    yield from serve_bao(tmp_path_factory.mktemp("bao"))


@dataclass(frozen=True)
class VaultScenario:
    bao: Bao
    ledger: Path
    invocation_id: str
    secrets: set[str]


def _oidc_token(sandbox: dict[str, Any]) -> str:
    env = sandbox["environ"]
    request = urllib.request.Request(
        env["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=vault",
        headers={"Authorization": f"bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"},
    )
    with urllib.request.urlopen(request) as answer:
        return str(json.load(answer)["value"])


def _login(bao: Bao, sandbox: dict[str, Any], folder: Path) -> dict[str, Any]:
    token_file = folder / f"jwt-{secrets.token_hex(4)}"
    token_file.write_text(_oidc_token(sandbox))
    done = bao.run("write", "-format=json", "auth/jwt/login", f"role={ROLE}", f"jwt=@{token_file}")
    token_file.unlink()
    assert done.returncode == 0, done.stderr
    auth: dict[str, Any] = json.loads(done.stdout)["auth"]
    return auth


@pytest.fixture(scope="module")
def vault(
    bao: Bao, sandbox: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> VaultScenario:
    folder = tmp_path_factory.mktemp("vault-job")
    policy = 'path "secret/data/app/*" { capabilities = ["read"] }\n'
    for args, stdin in (
        (("policy", "write", ROLE, "-"), policy),
        (("kv", "put", "-mount=secret", "app/db", "password=not-a-real-one"), None),
        (("auth", "enable", "jwt"), None),
        (
            (
                "write",
                "auth/jwt/config",
                f"oidc_discovery_url={sandbox['oidc_issuer']}",
                f"bound_issuer={sandbox['oidc_issuer']}",
            ),
            None,
        ),
        (
            ("write", f"auth/jwt/role/{ROLE}", "-"),
            json.dumps(
                {
                    "role_type": "jwt",
                    "user_claim": "sub",
                    "bound_audiences": ["vault"],
                    "token_policies": [ROLE],
                    "token_ttl": "10m",
                    "bound_claims": {"repository": "nhi-sandbox/demo"},
                }
            ),
        ),
    ):
        done = bao.run(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
    # The invocation, as the Vault broker will record it.
    ledger_path = folder / "ledger.jsonl"
    invocation_id = "vault4invoc1"
    ledger = Ledger(str(ledger_path), invocation_id, "migrate-db")
    ledger.append(
        "invocation.started", datetime.now(UTC), ci={"provider": "github", "run_id": "42"}
    )
    auth = _login(bao, sandbox, folder)
    ledger.append(
        "credential.issued",
        datetime.now(UTC),
        cloud="vault",
        purpose="child",
        principal=PRINCIPAL,
        accessor=auth["accessor"],
        policies=auth["policies"],
        fingerprint="sha256:" + secrets.token_hex(32),
        expires_at=rfc3339(datetime.now(UTC) + timedelta(seconds=auth["lease_duration"])),
        leases=[],
    )
    token = auth["client_token"]
    assert bao.run("kv", "get", "-mount=secret", "app/db", token=token).returncode == 0
    assert bao.run("kv", "get", "-mount=secret", "other/thing", token=token).returncode != 0
    ledger.append("command.exited", datetime.now(UTC), exit_code=0)
    ledger.append("invocation.finished", datetime.now(UTC), exit_code=0)
    time.sleep(0.01)
    # The token used after its command exited: a leak.
    assert bao.run("kv", "get", "-mount=secret", "app/db", token=token).returncode == 0
    # Another login to the same role that no ledger knows.
    foreign = _login(bao, sandbox, folder)
    assert (
        bao.run("kv", "get", "-mount=secret", "app/db", token=foreign["client_token"]).returncode
        == 0
    )
    assert "client_token" not in ledger_path.read_text()
    assert token not in ledger_path.read_text()
    return VaultScenario(
        bao, ledger_path, invocation_id, {token, foreign["client_token"], bao.root_token}
    )


def trace(scenario: VaultScenario, *args: str, env: dict[str, str] | None = None) -> Result:
    result = run_nhi(
        ["audit", "trace", str(scenario.ledger), *args, "--json"],
        {"PATH": os.environ["PATH"], "HOME": str(scenario.bao.logs)} | (env or {}),
    )
    for secret in scenario.secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
    return result


def _summary(result: Result) -> list[tuple[str, str | None, str | None, bool, bool]]:
    return [
        (e["resource"], e["invocation_id"], e["match"], e["after_end"], e["unattributed"])
        for e in json.loads(result.stdout)["events"]
    ]


EXPECTED = [
    ("auth/jwt/login", "vault4invoc1", "minted", False, False),
    ("secret/data/app/db", "vault4invoc1", "accessor", False, False),
    ("secret/data/other/thing", "vault4invoc1", "accessor", False, False),
    ("secret/data/app/db", "vault4invoc1", "accessor", True, False),
    ("auth/jwt/login", None, None, False, True),
    ("secret/data/app/db", None, None, False, True),
]


def _requests(result: Result) -> list[tuple[str, str | None, str | None, bool, bool]]:
    """The requests the test made; the bao CLI's own reads of mount metadata, which precede
    each `kv get`, are left aside (they are attributed the same way)."""
    return [s for s in _summary(result) if not s[0].startswith("sys/internal/ui/mounts/")]


def test_a_plain_accessor_audit_log_attributes_the_requests_of_the_token(
    vault: VaultScenario,
) -> None:
    result = trace(vault, "--vault-audit", str(vault.bao.logs / "audit-plain.log"))
    assert result.code == 1, result.stderr  # the token was used after its command exited
    assert _requests(result) == EXPECTED
    denied = next(
        e for e in json.loads(result.stdout)["events"] if e["resource"] == "secret/data/other/thing"
    )
    assert denied["error_code"] == "permission denied"


def test_the_vault_role_as_focus_shows_every_token_of_it(vault: VaultScenario) -> None:
    log = str(vault.bao.logs / "audit-plain.log")
    result = trace(vault, "--vault-audit", log, "--principal", PRINCIPAL, "--fail-on", "none")
    assert result.code == 0, result.stderr
    assert _requests(result) == EXPECTED  # ours, and the other login's, which no ledger knows


def test_an_hmaced_audit_log_is_matched_through_sys_audit_hash(vault: VaultScenario) -> None:
    log = str(vault.bao.logs / "audit-hmac.log")
    without = trace(vault, "--vault-audit", log)
    assert without.code == 0
    assert json.loads(without.stdout)["events"] == []
    assert "the audit log HMACs token accessors" in without.stderr
    # A token that may do nothing but hash through the `file` device.
    policy = 'path "sys/audit-hash/file" { capabilities = ["update"] }\n'
    assert vault.bao.run("policy", "write", "audit-hasher", "-", stdin=policy).returncode == 0
    hasher = vault.bao.run("token", "create", "-policy=audit-hasher", "-format=json")
    token = json.loads(hasher.stdout)["auth"]["client_token"]
    with_hash = trace(
        vault,
        "--vault-audit",
        log,
        env={"NHI_VAULT_AUDIT_HASH_TOKEN": token, "VAULT_ADDR": vault.bao.address},
    )
    assert token not in with_hash.stdout + with_hash.stderr
    assert with_hash.code == 1, with_hash.stderr
    assert [
        s for s in _summary(with_hash) if not s[0].startswith("sys/internal/ui/mounts")
    ] == EXPECTED


def test_a_token_without_sys_audit_hash_rights_is_refused_with_the_fix(
    vault: VaultScenario,
) -> None:
    weak = vault.bao.run("token", "create", "-policy=default", "-format=json")
    token = json.loads(weak.stdout)["auth"]["client_token"]
    result = run_nhi(
        [
            "audit",
            "trace",
            str(vault.ledger),
            "--vault-audit",
            str(vault.bao.logs / "audit-hmac.log"),
            "--vault-addr",
            vault.bao.address,
        ],
        {
            "PATH": os.environ["PATH"],
            "HOME": str(vault.bao.logs),
            "NHI_VAULT_AUDIT_HASH_TOKEN": token,
        },
    )
    assert result.code == 77
    assert "Vault refused sys/audit-hash/file (HTTP 403)" in result.stderr
    assert token not in result.stderr + result.stdout

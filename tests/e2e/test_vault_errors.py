"""What goes wrong with Vault, each as one line with its fix and its exit code, the command
never started and a token already obtained revoked: a role refusing the token's claims or
audience, a missing path or field, a read the policy denies, a wrong auth mount, Vault
unreachable, sealed, or behind a certificate not trusted. Plus what needs no Vault at all:
the dry run, bad options."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.sandbox.loopback import free_port
from nhi_invoke.sandbox.openbao import call
from nhi_invoke.sandbox.vault import IssuerTrust, VaultSandbox, VaultServers
from tests.e2e.runs import ledger_events, run_nhi
from tests.e2e.vault_runs import (
    Background,
    child,
    report_of,
    runs_begin,
    vault_env,
    vault_events,
    vault_run,
    wait_for,
)
from tests.net.tls import PrivateCa, TlsFront
from tests.vault_fixtures import missing, openbao_missing, vault_http

pytestmark = pytest.mark.e2e
__all__ = ["vault_env"]  # a fixture


def _error_line(stderr: str) -> str:
    (line,) = [text for text in stderr.splitlines() if text.startswith("nhi-invoke: error:")]
    return line


def _no_command_and_nothing_left(
    vault: VaultSandbox, env: dict[str, str], report: Path
) -> list[dict[str, Any]]:
    """The command never ran; every token the ledger shows was revoked (Vault agrees)."""
    assert not report.exists()
    issued = vault_events(env, "credential.issued")
    revoked = vault_events(env, "credential.revoked")
    assert [e["accessor"] for e in revoked] == [e["accessor"] for e in issued]
    for event in issued:
        looked_up = vault_http(
            vault.address,
            "POST",
            "auth/token/lookup-accessor",
            vault.root_token.reveal(),
            {"accessor": event["accessor"]},
        )
        assert looked_up.status == 400, looked_up.body  # "invalid accessor": gone
    (error,) = [e for e in ledger_events(env) if e["event"] == "error"]
    return [error]


def test_a_role_that_refuses_the_tokens_claims_is_77_and_names_them(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi([*vault_run(vault, role=vault.refused_role), *child(report)], vault_env)
    assert result.code == 77, result.stderr
    line = _error_line(result.stderr)
    assert f"Vault role '{vault.refused_role}' refused the token's claims" in line
    assert f"repository='{vault.repository}'" in line
    assert "fix: the role's bound_claims" in line
    assert vault_events(vault_env, "credential.issued") == []
    _no_command_and_nothing_left(vault, vault_env, report)


def test_an_audience_the_role_does_not_accept_is_77_naming_the_option(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    args = [*vault_run(vault), "--vault-audience", "https://elsewhere.example", *child(report)]
    result = run_nhi(args, vault_env)
    assert result.code == 77, result.stderr
    assert "fix: set --vault-audience to one of the role's bound_audiences" in result.stderr
    assert not report.exists()


def test_an_unknown_role_or_auth_mount_is_a_configuration_error(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    unknown = run_nhi([*vault_run(vault, role="no-such-role"), *child(report)], vault_env)
    assert unknown.code == 78, unknown.stderr
    assert "Vault has no role 'no-such-role' at auth/jwt" in unknown.stderr
    mount = run_nhi([*vault_run(vault), "--vault-auth-path", "github", *child(report)], vault_env)
    assert mount.code == 78, mount.stderr
    assert "Vault has no JWT login at auth/github/login (HTTP 403" in mount.stderr
    assert "fix: check --vault-auth-path" in mount.stderr
    assert not report.exists()


def test_a_missing_path_is_78_and_the_token_already_obtained_is_revoked(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi(
        [*vault_run(vault, "secret/data/ci/nothing-here api_key | KEY"), *child(report)],
        vault_env,
    )
    assert result.code == 78, result.stderr
    line = _error_line(result.stderr)
    assert "Vault has no secret at secret/data/ci/nothing-here (HTTP 404)" in line
    assert "fix: check the path in --vault-secret" in line
    _no_command_and_nothing_left(vault, vault_env, report)


def test_a_kv_v2_path_without_data_is_refused_with_the_layout_in_the_fix(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi(
        [*vault_run(vault, f"{vault.kv2.cli_path} api_key | KEY"), *child(report)], vault_env
    )
    assert result.code == 77, result.stderr  # outside the policy, which names data/ paths
    assert "if it is a KV v2 secret, give its API path: data/ after the mount" in result.stderr
    _no_command_and_nothing_left(vault, vault_env, report)


def test_a_missing_secret_is_78_naming_the_kv_v2_layout(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi(
        [*vault_run(vault, "kv1/ci/nothing-here password | P"), *child(report)], vault_env
    )
    assert result.code == 78, result.stderr
    line = _error_line(result.stderr)
    assert "Vault has no secret at kv1/ci/nothing-here (HTTP 404)" in line
    assert "a KV v2 secret's API path has data/ after the mount" in line
    _no_command_and_nothing_left(vault, vault_env, report)


def test_a_missing_field_is_78_naming_the_fields_there_are(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi(
        [*vault_run(vault, f"{vault.kv2.api_path} apikey | KEY"), *child(report)], vault_env
    )
    assert result.code == 78, result.stderr
    assert (
        f"the secret at {vault.kv2.api_path} has no field 'apikey' (its fields: api_key, "
        "signing_key)" in result.stderr
    )
    _no_command_and_nothing_left(vault, vault_env, report)


def test_a_read_the_policy_denies_is_77_with_the_policy_line_to_add(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    path = vault.denied.api_path
    result = run_nhi([*vault_run(vault, f"{path} password | P"), *child(report)], vault_env)
    assert result.code == 77, result.stderr
    line = _error_line(result.stderr)
    assert f"Vault refused to read {path}: permission denied to the token's policies" in line
    assert f'fix: allow it in one of them: path "{path}" {{ capabilities = ["read"] }}' in line
    _no_command_and_nothing_left(vault, vault_env, report)


def test_an_unreachable_vault_is_69_within_the_timeout(
    vault: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    address = f"http://127.0.0.1:{free_port()}"
    args = ["run", "--step-id", "s", "--vault-addr", address, "--vault-role", vault.role]
    result = run_nhi(
        [*args, "--vault-audience", vault.audience, "--timeout", "2", *child(report)], vault_env
    )
    assert result.code == 69, result.stderr
    line = _error_line(result.stderr)
    assert "the Vault login failed after" in line
    assert f"fix: check that Vault at {address} is reachable" in line
    assert not report.exists()


@pytest.fixture(scope="module")
def sealed(sandbox: dict[str, Any]) -> Iterator[VaultSandbox]:
    """An OpenBao of its own (the session's must stay unsealed), trusting the same issuer,
    sealed by its operator."""
    if reason := openbao_missing():
        missing(reason)
    trust = IssuerTrust(
        sandbox["oidc_issuer"], sandbox["oidc_jwks_url"], sandbox["environ"]["GITHUB_REPOSITORY"]
    )
    with VaultServers(trust, database=False) as server:
        call(server.address, "PUT", "sys/seal", server.root_token)
        yield server


def test_a_sealed_vault_is_69_saying_so(
    sealed: VaultSandbox, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_nhi([*vault_run(sealed), *child(report)], vault_env)
    assert result.code == 69, result.stderr
    line = _error_line(result.stderr)
    assert f"Vault at {sealed.address} is sealed (the login answered 503 'Vault is sealed')" in line
    assert "fix: unseal it" in line
    assert not report.exists()


def test_a_vault_sealed_while_the_command_runs_leaves_the_token_recorded_as_expiring(
    sandbox: dict[str, Any], vault_env: dict[str, str], tmp_path: Path
) -> None:
    if reason := openbao_missing():
        missing(reason)
    trust = IssuerTrust(
        sandbox["oidc_issuer"], sandbox["oidc_jwks_url"], sandbox["environ"]["GITHUB_REPOSITORY"]
    )
    runs_begin()
    with VaultServers(trust, database=False) as server:
        up, sealed = tmp_path / "up", tmp_path / "sealed"
        running = Background(
            [*vault_run(server), *child(tmp_path / "r.json", f"touch:{up}", f"wait:{sealed}")],
            vault_env,
        )
        wait_for(up)
        call(server.address, "PUT", "sys/seal", server.root_token)
        sealed.touch()
        ended = running.wait()
    assert ended.code == 0, ended.stderr  # the command's own code: it ran
    (closed,) = vault_events(vault_env, "credential.expiring")
    assert f"Vault at {server.address} is sealed" in closed["revocation_failure"]
    assert closed["exposure_seconds"] > 0
    assert "could not be revoked; it stays usable until" in ended.stderr


def test_the_dry_run_shows_the_login_the_reads_and_the_ttl_without_contacting_vault(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    address = f"https://127.0.0.1:{free_port()}"  # nothing listens: nothing may be asked
    args = [
        "run", "--dry-run", "--json", "--step-id", "deploy", "--token-file", "/nonexistent",
        "--vault-addr", address, "--vault-role", "ci-deploy", "--vault-ttl", "600",
        "--vault-secret", "secret/data/ci/deploy api_key | DEPLOY_KEY",
        "--vault-secret", "database/creds/readonly username | PGUSER",
        "--vault-secret", "database/creds/readonly password | PGPASSWORD",
        "--", "deploy.sh",
    ]  # fmt: skip
    result = run_nhi(args, base_env)
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)["vault"]
    assert plan["login_path"] == "auth/jwt/login"
    assert plan["audience"] == address
    assert plan["ttl_seconds"] == 600
    assert [r["variable"] for r in plan["reads"]] == ["DEPLOY_KEY", "PGUSER", "PGPASSWORD"]
    table = run_nhi([a for a in args if a != "--json"], base_env | {"COLUMNS": "250"})
    assert table.code == 0, table.stderr
    assert "POST /v1/auth/jwt/login (role ci-deploy)" in table.stdout
    assert "GET /v1/database/creds/readonly: username -> PGUSER, password -> PGPASSWORD" in (
        table.stdout
    )
    assert "at most 600 s at a time" in table.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--vault-secret", "secret/data/x key"],
            "--vault-secret is given (by --vault-secret) but --vault-role is not",
        ),
        (["--vault-role", "r"], "--vault-role is given but no Vault address"),
        (
            ["--vault-role", "r", "--vault-addr", "https://v:8200", "--vault-ttl", "5"],
            "--vault-ttl 5 is outside 10-2764800 s",
        ),
        (
            ["--vault-role", "r", "--vault-addr", "https://v:8200", "--vault-secret", "a b c"],
            "--vault-secret 'a b c' is not 'PATH FIELD | ENV_NAME'",
        ),
        (
            ["--vault-role", "r", "--vault-addr", "https://v:8200", "--vault-secret", "a b | PATH"],
            None,  # PATH is allowed: the user chose it
        ),
        (
            [
                "--vault-role",
                "r",
                "--vault-addr",
                "https://v:8200",
                "--vault-secret",
                "a b | BAO_TOKEN",
            ],
            "nhi-invoke sets BAO_TOKEN for the command itself",
        ),
        (
            # Another broker's variable: the secret would replace the step's AWS key.
            [
                "--aws-role-arn",
                "arn:aws:iam::123456789012:role/deploy",
                "--vault-role",
                "r",
                "--vault-addr",
                "https://v:8200",
                "--vault-secret",
                "a b | AWS_ACCESS_KEY_ID",
            ],
            "AWS_ACCESS_KEY_ID would be set for the command by both aws and vault",
        ),
        (
            ["--vault-role", "r", "--vault-addr", "ftp://v"],
            "--vault-addr='ftp://v' is not an http(s) base URL",
        ),
        (
            ["--vault-role", "r", "--vault-addr", "https://v:8200", "--serve"],
            "--serve: the Vault broker cannot serve its credentials",
        ),
    ],
)
def test_bad_vault_options_are_78_before_anything_is_asked(
    base_env: dict[str, str], extra: list[str], message: str | None
) -> None:
    args = ["run", "--dry-run", "--step-id", "s", "--token-file", "/nonexistent", *extra]
    result = run_nhi([*args, "--", "true"], base_env)
    if message is None:
        assert result.code == 0, result.stderr
        return
    assert result.code == 78, result.stderr
    assert message in result.stderr


@pytest.fixture(scope="module")
def vault_tls(vault: VaultSandbox, private_ca: PrivateCa) -> Iterator[TlsFront]:
    """The session's OpenBao behind TLS, with a certificate only the private CA signed."""
    with TlsFront(private_ca, ("vault.nhi-test.invalid",), vault.address) as front:
        yield front


def test_vault_cacert_is_trusted_for_the_login_and_by_the_command(
    vault: VaultSandbox,
    vault_tls: TlsFront,
    private_ca: PrivateCa,
    vault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"
    args = ["run", "--step-id", "s", "--vault-addr", vault_tls.direct_url]
    args += ["--vault-role", vault.role, "--vault-audience", vault.audience]
    env = vault_env | {"VAULT_CACERT": str(private_ca.bundle)}
    result = run_nhi([*args, *child(report, "lookup")], env)
    assert result.code == 0, result.stderr
    (lookup,) = report_of(report)["results"]
    assert lookup["code"] == 0, lookup["stderr"]  # the bao CLI trusts the same CA
    untrusted = run_nhi([*args, *child(report)], vault_env)
    assert untrusted.code == 69, untrusted.stderr
    assert "Vault's TLS certificate at https://localhost:" in untrusted.stderr
    assert "fix: set VAULT_CACERT" in untrusted.stderr
    assert "after" not in _error_line(untrusted.stderr)  # not retried: it will not change


def test_vaults_own_ca_setting_wins_over_ca_bundle_which_serves_when_there_is_none(
    vault: VaultSandbox,
    vault_tls: TlsFront,
    private_ca: PrivateCa,
    vault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    import certifi  # noqa: PLC0415 - public CAs only: not the private one

    report = tmp_path / "report.json"
    args = ["run", "--step-id", "s", "--vault-addr", vault_tls.direct_url]
    args += ["--vault-role", vault.role, "--vault-audience", vault.audience]
    # docs/networks.md: the service's own setting first, then --ca-bundle.
    own = vault_env | {"VAULT_CACERT": str(private_ca.bundle)}
    result = run_nhi([*args, "--ca-bundle", certifi.where(), *child(report)], own)
    assert result.code == 0, result.stderr
    general = run_nhi([*args, "--ca-bundle", str(private_ca.bundle), *child(report)], vault_env)
    assert general.code == 0, general.stderr


def test_vault_capath_is_trusted_as_a_folder_of_hashed_certificates(
    vault: VaultSandbox,
    vault_tls: TlsFront,
    private_ca: PrivateCa,
    vault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "cas"
    folder.mkdir()
    (folder / "private-ca.pem").write_bytes(private_ca.pem)
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    report = tmp_path / "report.json"
    args = ["run", "--step-id", "s", "--vault-addr", vault_tls.direct_url]
    args += ["--vault-role", vault.role, "--vault-audience", vault.audience]
    result = run_nhi([*args, *child(report)], vault_env | {"VAULT_CAPATH": str(folder)})
    assert result.code == 0, result.stderr


def test_vault_skip_verify_works_and_warns_loudly(
    vault: VaultSandbox, vault_tls: TlsFront, vault_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    args = ["run", "--step-id", "s", "--vault-addr", vault_tls.direct_url]
    args += ["--vault-role", vault.role, "--vault-audience", vault.audience]
    result = run_nhi([*args, *child(report)], vault_env | {"VAULT_SKIP_VERIFY": "true"})
    assert result.code == 0, result.stderr
    assert (
        "nhi-invoke: warning: VAULT_SKIP_VERIFY is set: Vault's TLS certificate is NOT checked"
        in result.stderr
    )
    dry = run_nhi([*args, "--dry-run", "--", "true"], vault_env | {"VAULT_SKIP_VERIFY": "1"})
    assert "VAULT_SKIP_VERIFY is set" in dry.stderr + dry.stdout
    bad = run_nhi([*args, "--", "true"], vault_env | {"VAULT_SKIP_VERIFY": "maybe"})
    assert bad.code == 78
    assert "VAULT_SKIP_VERIFY='maybe' is not a boolean" in bad.stderr

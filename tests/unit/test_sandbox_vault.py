"""The sandbox's OpenBao and PostgreSQL pieces that need no server: the policy, paths, and
the errors and fallbacks on a machine without the binaries."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.errors import ConfigError, UnavailableError
from nhi_invoke.sandbox.loopback import free_port
from nhi_invoke.sandbox.openbao import OpenBaoServer
from nhi_invoke.sandbox.postgres import Postgres, find_bin_dir
from nhi_invoke.sandbox.vault import IssuerTrust, KvSecret, VaultServers, policy_text
from tests.vault_fixtures import missing, openbao_missing

TRUST = IssuerTrust("http://127.0.0.1:1", "http://127.0.0.1:1/.well-known/jwks", "o/r")


def test_the_policy_reads_the_paths_and_manages_only_its_own_token_and_leases() -> None:
    assert policy_text(["secret/data/ci/*"], updatable=["sys/leases/revoke"]) == (
        'path "secret/data/ci/*" {\n  capabilities = ["read"]\n}\n'
        'path "auth/token/lookup-self" {\n  capabilities = ["read"]\n}\n'
        'path "auth/token/renew-self" {\n  capabilities = ["update"]\n}\n'
        'path "auth/token/revoke-self" {\n  capabilities = ["update"]\n}\n'
        'path "sys/leases/renew" {\n  capabilities = ["update"]\n}\n'
        'path "sys/leases/revoke" {\n  capabilities = ["update"]\n}\n'
    )


def test_kv_v2_paths_put_data_after_the_mount_for_the_api_only() -> None:
    v2 = KvSecret("secret", "ci/deploy", 2, {"k": Secret("v")})
    v1 = KvSecret("kv1", "ci/legacy", 1, {"k": Secret("v")})
    assert (v2.api_path, v2.cli_path) == ("secret/data/ci/deploy", "secret/ci/deploy")
    assert (v1.api_path, v1.cli_path) == ("kv1/ci/legacy", "kv1/ci/legacy")


def test_postgres_without_its_binaries_names_the_folder_and_the_package(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        Postgres(str(tmp_path))
    assert raised.value.one_line() == (
        "PostgreSQL's server binaries (initdb, postgres, pg_isready, psql) were not found in "
        f"{tmp_path}; fix: install PostgreSQL's server package (Debian: apt-get install "
        "postgresql-15)"
    )
    assert find_bin_dir([str(tmp_path)]) is None


def test_without_postgresql_openbao_runs_kv_only_and_says_why(tmp_path: Path) -> None:
    servers = VaultServers(TRUST, binary="bao", postgres_search=[str(tmp_path)])
    assert servers.database_missing == (
        "PostgreSQL's server binaries (initdb, postgres, pg_isready, psql) were not found"
    )


def test_asking_for_the_database_without_postgresql_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PostgreSQL's server binaries"):
        VaultServers(TRUST, binary="bao", database=True, postgres_search=[str(tmp_path)])


def test_an_audit_log_path_hcl_would_misread_is_refused() -> None:
    with pytest.raises(ConfigError, match="characters HCL would misread"):
        OpenBaoServer("bao", audit_log='/tmp/a"b').start()


def test_a_dev_server_that_fails_to_start_is_one_line_with_its_reason(tmp_path: Path) -> None:
    if reason := openbao_missing():
        missing(reason)
    server = OpenBaoServer(audit_log=str(tmp_path))  # a folder: the audit device cannot open it
    with pytest.raises(UnavailableError) as raised:
        server.start()
    assert raised.value.one_line().startswith("OpenBao's dev server exited: ")
    assert f'unable to open \\"{tmp_path}\\" for writing' in raised.value.one_line()
    assert server.root_token.reveal() not in raised.value.one_line()


def test_free_port_with_following_gives_a_run_of_free_ports() -> None:
    port = free_port(following=1)
    for candidate in (port, port + 1):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", candidate))

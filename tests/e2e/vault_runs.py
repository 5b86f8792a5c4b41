"""What the Vault broker's end-to-end tests share: a job's environment that reaches the
session's OpenBao (and PostgreSQL), the `run` arguments for it, the reporting child, and
readers of what an invocation left in the ledger."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.sandbox.vault import DatabaseEngine, VaultSandbox
from tests.e2e.runs import FIRST_RUN_AT, NHI, RUNS, Result, ledger_events

CHILD_VAULT = str(Path(__file__).with_name("child_vault.py"))


@pytest.fixture
def vault_env(github_env: dict[str, str], vault: VaultSandbox) -> dict[str, str]:
    """A GitHub job whose OIDC tokens the session's OpenBao trusts; the child finds the bao
    CLI (and psql, PostgreSQL's address, when there is a database) through these names."""
    env = github_env | {"NHI_TEST_BAO": vault.binary}
    if vault.database is not None:
        server = vault.database.postgres
        env |= {
            "NHI_TEST_PSQL": server.psql,
            "PGHOST": server.host,
            "PGPORT": str(server.port),
            "PGDATABASE": server.database,
        }
    return env


def runs_begin() -> None:
    """A run started other than by `run_nhi` (in the background): the leak sweep checks every
    file written from now on."""
    if not FIRST_RUN_AT:
        FIRST_RUN_AT.append(time.time())


def vault_run(vault: VaultSandbox, *secrets: str, role: str | None = None) -> list[str]:
    """`nhi-invoke run` for the session's OpenBao and role, with these `--vault-secret`s."""
    args = ["run", "--step-id", "migrate-db", "--vault-addr", vault.address]
    args += ["--vault-role", role or vault.role]
    for secret in secrets:
        args += ["--vault-secret", secret]
    return args


def child(report: Path, *actions: str) -> list[str]:
    return ["--", sys.executable, CHILD_VAULT, str(report), *actions]


def report_of(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def database_secrets(database: DatabaseEngine) -> tuple[str, str]:
    creds = database.creds_path
    return f"{creds} username | PGUSER", f"{creds} password | PGPASSWORD"


def revoke_outcomes(stdout: str) -> list[dict[str, Any]]:
    """`nhi-invoke revoke --json`'s outcomes: a list, or the list in a JSON envelope."""
    data = json.loads(stdout)
    if isinstance(data, list):
        return data
    return next(v for v in data.values() if isinstance(v, list))


def vault_events(env: dict[str, str], event: str) -> list[dict[str, Any]]:
    return [e for e in ledger_events(env) if e["event"] == event and e.get("cloud") == "vault"]


def last_state(env: dict[str, str]) -> dict[str, Any]:
    """The token's fields as the ledger last recorded them (issued, then each update)."""
    found = vault_events(env, "credential.updated") or vault_events(env, "credential.issued")
    return found[-1]


class Background:
    """An `nhi-invoke run` started in the background (a step of another job, say)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [NHI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait(self) -> Result:
        stdout, stderr = self.process.communicate(timeout=120)
        result = Result(self.process.returncode, stdout, stderr)
        RUNS.append(result)  # the leak sweep reads it
        return result


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)

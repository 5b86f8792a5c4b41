"""End-to-end fixtures: the installed `nhi-invoke` as a real process, against the sandbox
emulators (OIDC issuer + moto) running as another real process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients.fixtures import *  # noqa: F403 - real clients, a planted home
from tests.e2e.runs import (
    API_SECRETS,
    CHILD,
    FIRST_RUN_AT,
    INPUT_FILES,
    NHI,
    RUNS,
    Result,
    assert_no_leak,
    child_command,
    deny_policies,
    iam_client,
    imported_packages,
    ledger_events,
    ledger_path,
    run_nhi,
)
from tests.fault_proxy import FaultProxy
from tests.net.fixtures import *  # noqa: F403 - proxy, private CA (docs/networks.md)
from tests.vault_fixtures import session_secrets as vault_session_secrets

READY_TIMEOUT = 60
# OpenBao's service and batch tokens (s./b. and 24 characters), Vault's (hvs./hvb. …).
VAULT_TOKEN_SHAPE = re.compile(r"(?<![\w.])(?:[sb]\.[A-Za-z0-9]{24}|hv[sb]\.[\w-]{24,})(?![\w.])")
# Shared with the tests through tests/e2e/runs.py; kept importable from here too.
__all__ = [
    "CHILD",
    "NHI",
    "Result",
    "assert_no_leak",
    "child_command",
    "deny_policies",
    "iam_client",
    "imported_packages",
    "ledger_events",
    "ledger_path",
    "run_nhi",
]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`nhi-invoke sandbox` serving its emulators for the whole session."""
    yield from _serve_sandbox(tmp_path_factory)


def _serve_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ready = tmp_path_factory.mktemp("sandbox") / "ready.json"
    proc = subprocess.Popen(
        [NHI, "sandbox", "--quiet", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready.exists() or ready.stat().st_size == 0:
        if proc.poll() is not None:
            raise RuntimeError(
                f"sandbox exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("sandbox did not become ready")
        time.sleep(0.05)
    time.sleep(0.05)  # the file is written in one go, but let the writer close it
    info = json.loads(ready.read_text())
    yield info
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def base_env(home: Path) -> dict[str, str]:
    """A clean environment with no CI: only what a process needs to run."""
    return {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture
def github_env(base_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """A GitHub Actions job's environment whose token endpoint and AWS are the emulators."""
    runner_temp = tmp_path / "runner_temp"
    runner_temp.mkdir()
    return base_env | sandbox["environ"] | {"RUNNER_TEMP": str(runner_temp)}


def _reported_secrets(root: Path) -> tuple[set[str], set[Path]]:
    """Secrets the test's child commands reported (and the report files holding them)."""
    secrets: set[str] = set()
    reports: set[Path] = set()
    for path in root.rglob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError, OSError):
            continue
        if isinstance(data, dict) and isinstance(data.get("secrets"), list):
            secrets |= {s for s in data["secrets"] if isinstance(s, str) and s}
            reports.add(path)
    return secrets, reports


@pytest.fixture(autouse=True)
def secret_leak_sweep(tmp_path: Path) -> Iterator[None]:
    """After every end-to-end test: no secret or token in any run's stdout (outside
    `::add-mask::` lines) or stderr, nor in any file written during the test's runs (ledgers,
    job summaries, $GITHUB_ENV, $GITHUB_OUTPUT, temporary files), but the child's own report.
    Files the test wrote before its first run (a token file it passes in) are inputs, as are
    those it names with `note_input`. Secrets the Python API handed to the test's own process
    (`note_secrets`, `note_environment`) are swept for in the same files."""
    RUNS.clear()
    FIRST_RUN_AT.clear()
    API_SECRETS.clear()
    INPUT_FILES.clear()
    yield
    if not RUNS and not API_SECRETS:
        return
    reported, reports = _reported_secrets(tmp_path)
    secrets = (
        reported | {s for run in RUNS for s in run.secrets} | vault_session_secrets() | API_SECRETS
    )
    since = FIRST_RUN_AT[0]
    files = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p not in reports
        and p not in INPUT_FILES
        and p.stat().st_mtime >= since
        and p.stat().st_size < 5_000_000
    ]
    for secret in secrets:
        for run in RUNS:
            assert secret not in run.unmasked_stdout, "a secret in stdout"
            assert secret not in run.stderr, "a secret in stderr"
        for path in files:
            assert secret not in path.read_text(errors="replace"), f"a secret in {path}"
    # Vault and OpenBao tokens by their shape, even where no run masked them (the sandbox).
    for run in RUNS:
        assert not VAULT_TOKEN_SHAPE.search(run.unmasked_stdout + run.stderr), "a Vault token"
    for path in files:
        assert not VAULT_TOKEN_SHAPE.search(path.read_text(errors="replace")), f"in {path}"


@pytest.fixture
def private_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A sandbox of this test's own, for tests that change moto's global state."""
    yield from _serve_sandbox(tmp_path_factory)


@pytest.fixture
def proxies(sandbox: dict[str, Any]) -> Iterator[dict[str, FaultProxy]]:
    with (
        FaultProxy(sandbox["aws_endpoint"]) as aws,
        FaultProxy(sandbox["oidc_issuer"]) as issuer,
        FaultProxy(sandbox["gcp_endpoint"]) as gcp,
    ):
        yield {"aws": aws, "issuer": issuer, "gcp": gcp}


@pytest.fixture
def proxied_env(
    github_env: dict[str, str], sandbox: dict[str, Any], proxies: dict[str, FaultProxy]
) -> dict[str, str]:
    token_url = sandbox["environ"]["ACTIONS_ID_TOKEN_REQUEST_URL"].replace(
        sandbox["oidc_issuer"], proxies["issuer"].url
    )
    return github_env | {
        "ACTIONS_ID_TOKEN_REQUEST_URL": token_url,
        "AWS_ENDPOINT_URL_STS": proxies["aws"].url,
        "AWS_ENDPOINT_URL_IAM": proxies["aws"].url,
        "NHI_GCP_STS_ENDPOINT": proxies["gcp"].url,
        "NHI_GCP_IAMCREDENTIALS_ENDPOINT": proxies["gcp"].url,
    }

"""End-to-end fixtures: the installed `nhi-invoke` as a real process, against the sandbox
emulators (OIDC issuer + moto) running as another real process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.clients.fixtures import *  # noqa: F403 - real clients, a planted home
from tests.fault_proxy import FaultProxy
from tests.net.fixtures import *  # noqa: F403 - proxy, private CA (docs/networks.md)
from tests.vault_fixtures import session_secrets as vault_session_secrets

NHI = shutil.which("nhi-invoke", path=os.path.dirname(sys.executable)) or "nhi-invoke"
CHILD = str(Path(__file__).with_name("child_identity.py"))
READY_TIMEOUT = 60


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def masked(self) -> set[str]:
        """The values nhi-invoke registered with `::add-mask::`."""
        prefix = "::add-mask::"
        return {line[len(prefix) :] for line in self.stdout.splitlines() if line.startswith(prefix)}

    @property
    def secrets(self) -> set[str]:
        """The masked values that are secret. Access key ids are masked too (as
        configure-aws-credentials does) but are not secret: the ledger records them so that
        CloudTrail events can be tied to the invocation."""
        return {v for v in self.masked if not re.fullmatch(r"(ASIA|AKIA)[A-Z0-9]{16}", v)}

    @property
    def unmasked_stdout(self) -> str:
        return "\n".join(
            line for line in self.stdout.splitlines() if not line.startswith("::add-mask::")
        )


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


def ledger_path(env: dict[str, str]) -> Path:
    return Path(env["RUNNER_TEMP"]) / "nhi-invoke" / "ledger.jsonl"


def ledger_events(env: dict[str, str]) -> list[dict[str, Any]]:
    path = ledger_path(env)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


# Every run of the current test, for the secret-leak sweep after it, and when the first began.
_RUNS: list[Result] = []
_FIRST_RUN_AT: list[float] = []


def run_nhi(args: list[str], env: dict[str, str], timeout: float = 60, **kwargs: Any) -> Result:
    if not _FIRST_RUN_AT:
        _FIRST_RUN_AT.append(time.time())
    done = subprocess.run(
        [NHI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    result = Result(done.returncode, done.stdout, done.stderr)
    _RUNS.append(result)
    return result


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
    Files the test wrote before its first run (a token file it passes in) are inputs."""
    _RUNS.clear()
    _FIRST_RUN_AT.clear()
    yield
    if not _RUNS:
        return
    reported, reports = _reported_secrets(tmp_path)
    secrets = reported | {s for run in _RUNS for s in run.secrets} | vault_session_secrets()
    since = _FIRST_RUN_AT[0]
    files = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p not in reports
        and p.stat().st_mtime >= since
        and p.stat().st_size < 5_000_000
    ]
    for secret in secrets:
        for run in _RUNS:
            assert secret not in run.unmasked_stdout, "a secret in stdout"
            assert secret not in run.stderr, "a secret in stderr"
        for path in files:
            assert secret not in path.read_text(errors="replace"), f"a secret in {path}"


def child_command(report: Path) -> list[str]:
    """A child that proves its identity with boto3 and reports what it was given."""
    return [sys.executable, CHILD, str(report)]


def assert_no_leak(result: Result, secrets: set[str], *files: Path) -> None:
    """No secret outside `::add-mask::` lines: not in stdout, stderr, or any file given."""
    for secret in secrets:
        assert secret, "an empty secret cannot be checked"
        assert secret not in result.unmasked_stdout
        assert secret not in result.stderr
        for path in files:
            if path.exists():
                assert secret not in path.read_text(errors="replace"), f"secret in {path}"


def imported_packages(args: list[str], env: dict[str, str]) -> set[str]:
    """The top-level packages a real `nhi-invoke ARGS` imports, read from `-X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nhi_invoke", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "nhi_invoke" in imported, "importtime printed nothing"
    return imported


def iam_client(sandbox: dict[str, Any]) -> Any:
    """boto3's IAM client on the sandbox's moto server (moto accepts any credentials)."""
    import boto3  # noqa: PLC0415

    return boto3.client(
        "iam",
        endpoint_url=sandbox["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def deny_policies(sandbox: dict[str, Any], role: str = "nhi-sandbox-deploy") -> dict[str, str]:
    """The target role's `nhi-revoked-*` policies: name -> the aws:userid each denies."""
    iam = iam_client(sandbox)
    found = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        if name.startswith("nhi-revoked-"):
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            (statement,) = document["Statement"]
            assert statement["Effect"] == "Deny"
            found[name] = statement["Condition"]["StringEquals"]["aws:userid"]
    return found


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

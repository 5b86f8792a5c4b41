"""Running the installed `nhi-invoke` as a real process, and reading what it left behind:
what end-to-end tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NHI = shutil.which("nhi-invoke", path=os.path.dirname(sys.executable)) or "nhi-invoke"
CHILD = str(Path(__file__).with_name("child_identity.py"))


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def masked(self) -> set[str]:
        """The values nhi-invoke registered with `::add-mask::`."""
        prefix = "::add-mask::"
        return {
            # As the runner reads them: a command's data is escaped (%25, %0D, %0A).
            line[len(prefix) :].replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
            for line in self.stdout.splitlines()
            if line.startswith(prefix)
        }

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


def ledger_path(env: dict[str, str]) -> Path:
    return Path(env["RUNNER_TEMP"]) / "nhi-invoke" / "ledger.jsonl"


def ledger_events(env: dict[str, str]) -> list[dict[str, Any]]:
    path = ledger_path(env)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


# Every run of the current test, for the secret-leak sweep after it, and when the first began.
RUNS: list[Result] = []
FIRST_RUN_AT: list[float] = []
# Secrets the Python API handed to the test's own process (tokens, credentials): the sweep
# looks for them in every file written during the test.
API_SECRETS: set[str] = set()
SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "CLOUDSDK_AUTH_ACCESS_TOKEN",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "IDENTITY_HEADER",  # the secret of a served managed-identity endpoint (Azure)
    "VAULT_TOKEN",
)


# Files a test writes a secret into on purpose, as an input (a token file it rewrites).
INPUT_FILES: set[Path] = set()


def note_input(path: Path) -> None:
    """A file holding a secret the test gave nhi-invoke (the sweep does not count it)."""
    INPUT_FILES.add(path)


def note_secrets(*values: str) -> None:
    """Secrets the test's process was given in-process (by the Python API), for the sweep."""
    if not FIRST_RUN_AT:
        FIRST_RUN_AT.append(time.time())
    API_SECRETS.update(v for v in values if v)


def note_environment(env: dict[str, str]) -> None:
    """The secret values of an invocation's `inv.env`, for the sweep."""
    note_secrets(*(env[name] for name in SECRET_VARIABLES if name in env))


def run_nhi(
    args: list[str],
    env: dict[str, str],
    timeout: float = 60,
    *,
    prefix: tuple[str, ...] = (),
    **kwargs: Any,
) -> Result:
    """`nhi-invoke ARGS` (behind `prefix`, e.g. a command that changes the user)."""
    if not FIRST_RUN_AT:
        FIRST_RUN_AT.append(time.time())
    done = subprocess.run(
        [*prefix, NHI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    result = Result(done.returncode, done.stdout, done.stderr)
    RUNS.append(result)
    return result


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


def declare_secrets(folder: Path, *values: str) -> None:
    """Tell the secret-leak sweep about secrets a test hands in (a ledger key): it then checks
    that none appears in any run's output or in any file the runs wrote."""
    (folder / "declared-secrets.json").write_text(json.dumps({"secrets": list(values)}))

"""The composite action, its steps run as the runner runs them, against the sandbox."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from nhi_invoke.oidc import fingerprint
from nhi_invoke.sandbox.entra_directory import SANDBOX_CLIENT_ID, SANDBOX_TENANT_ID
from tests.azure_fixtures import AZURE_CHILD
from tests.e2e.action_harness import run_action
from tests.e2e.runs import CHILD

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parent.parent.parent
WHEELHOUSE = ROOT / ".wheelhouse"
VAULT = "https://vault.azure.net/.default"
LOCK = "action/requirements.lock"


@pytest.fixture(scope="module")
def job_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RUNNER_TEMP for these tests, as for the steps of one job: the action installs
    nhi-invoke there once and later steps reuse it, and they share the job's ledger."""
    return tmp_path_factory.mktemp("job")


FILL_WHEELHOUSE = (
    "pip download --require-hashes --no-deps --only-binary :all: -d .wheelhouse "
    "-r action/requirements.lock"
)


def _check_wheelhouse_holds_the_lock() -> None:
    """The action installs offline from the wheelhouse, by hash: each locked package must be
    there as one of the files the lock names (`.ci/run` fetches them)."""
    hashes = set(re.findall(r"sha256:([0-9a-f]{64})", (ROOT / LOCK).read_text()))
    present = {hashlib.sha256(w.read_bytes()).hexdigest() for w in WHEELHOUSE.glob("*.whl")}
    locked = len(re.findall(r"^\S+==", (ROOT / LOCK).read_text(), re.MULTILINE))
    if len(hashes & present) < locked:
        pytest.fail(f"the wheelhouse lacks files of {LOCK}: fill it with '{FILL_WHEELHOUSE}'")


@pytest.fixture
def runner_env(github_env: dict[str, str], job_temp: Path, tmp_path: Path) -> dict[str, str]:
    """A GitHub job's variables, with pip pointed at the local wheelhouse (no network)."""
    if not any(WHEELHOUSE.glob("nhi_invoke-*.whl")):
        pytest.fail(
            f"no wheelhouse at {WHEELHOUSE}: build it with "
            "'pip wheel -q -w .wheelhouse . setuptools' (the README's test command does)"
        )
    _check_wheelhouse_holds_the_lock()
    for name in ("env", "step_summary"):
        (tmp_path / name).write_text("")
    return github_env | {
        "RUNNER_TEMP": str(job_temp),
        "GITHUB_ENV": str(tmp_path / "env"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
    }


def test_the_action_runs_the_script_under_the_steps_own_identity(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    script = f'"{sys.executable}" "{CHILD}" "{report}"\necho "script done: $NHI_STEP_ID"'
    run = run_action(
        ROOT,
        {
            "run": script,
            "step-id": "deploy-web",
            "aws-oidc-role-arn": sandbox["entry_role_arn"],
            "aws-role-arn": sandbox["target_role_arn"],
            "aws-revoke": "true",
            "session-tags": "team=web\ncost-center=42\n",
        },
        runner_env,
        tmp_path,
    )
    assert run.exit_code == 0, run.log
    identity = json.loads(report.read_text())
    assert ":assumed-role/nhi-sandbox-deploy/deploy-web." in identity["arn"]
    assert "script done: deploy-web" in run.log
    assert run.outputs["aws-principal-arn"] == identity["arn"]
    assert run.outputs["invocation-id"] == identity["values"]["NHI_INVOCATION_ID"]
    assert run.outputs["ledger-path"].endswith("nhi-invoke/ledger.jsonl")
    assert run.outputs["gcp-service-account"] == ""
    ledger = [
        json.loads(line) for line in Path(run.outputs["ledger-path"]).read_text().splitlines()
    ]
    issued = next(
        e for e in ledger if e["event"] == "credential.issued" and e["purpose"] == "child"
    )
    assert issued["tags"]["team"] == "web"
    assert issued["tags"]["cost-center"] == "42"
    masked = {
        line.removeprefix("::add-mask::")
        for line in run.log.splitlines()
        if line.startswith("::add-mask::")
    }
    secrets = set(identity["secrets"])
    assert secrets <= masked
    unmasked_log = "\n".join(
        line for line in run.log.splitlines() if not line.startswith("::add-mask::")
    )
    written = "".join(
        Path(runner_env[k]).read_text() for k in ("GITHUB_ENV", "GITHUB_STEP_SUMMARY")
    )
    outputs = json.dumps(run.step_outputs)
    for secret in secrets | {m for m in masked if m.startswith("eyJ")}:
        assert secret not in unmasked_log
        assert secret not in written
        assert secret not in outputs
    assert Path(runner_env["GITHUB_ENV"]).read_text() == ""


def test_the_action_both_clouds_outputs(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    run = run_action(
        ROOT,
        {
            "run": 'test -n "$CLOUDSDK_AUTH_ACCESS_TOKEN" && test -n "$AWS_SESSION_TOKEN"',
            "step-id": "both",
            "aws-role-arn": sandbox["target_role_arn"],
            "gcp-provider": sandbox["gcp_provider"],
            "gcp-service-account": sandbox["gcp_service_account"],
            "gcp-scopes": "https://www.googleapis.com/auth/cloud-platform\n",
        },
        runner_env,
        tmp_path,
    )
    assert run.exit_code == 0, run.log
    assert run.outputs["gcp-service-account"] == sandbox["gcp_service_account"]
    assert ":assumed-role/nhi-sandbox-deploy/both." in run.outputs["aws-principal-arn"]


def test_the_action_fails_clearly_without_id_token_permission(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    env = {k: v for k, v in runner_env.items() if not k.startswith("ACTIONS_ID_TOKEN")}
    run = run_action(
        ROOT, {"run": "true", "aws-role-arn": sandbox["target_role_arn"]}, env, tmp_path
    )
    assert run.exit_code == 78
    assert "::error title=nhi-invoke::" in run.log
    assert "id-token: write" in run.log


def test_a_failing_script_keeps_its_exit_code_and_still_writes_outputs(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    run = run_action(
        ROOT, {"run": "exit 4", "aws-role-arn": sandbox["target_role_arn"]}, runner_env, tmp_path
    )
    assert run.exit_code == 4
    assert run.step_outputs["run"]["invocation-id"]
    assert "no step-id input" in run.log


# The Azure inputs (issue 19), against the sandbox's Entra emulator, which federates the
# sandbox issuer's GitHub subject.
def test_the_action_gives_the_script_an_azure_identity_for_the_scopes_it_lists(
    runner_env: dict[str, str],
    sandbox: dict[str, Any],
    tmp_path: Path,
) -> None:
    whoami = f"{sandbox['azure_authority_host']}/__sandbox/whoami?audience=https://vault.azure.net"
    env = runner_env | {"REQUESTS_CA_BUNDLE": sandbox["azure_ca_file"]}  # the script's whoami
    run = run_action(
        ROOT,
        {
            "run": f'"{sys.executable}" "{AZURE_CHILD}" managed {VAULT} --whoami "{whoami}"\n'
            f'"{sys.executable}" "{AZURE_CHILD}" managed https://graph.microsoft.com/.default',
            "step-id": "deploy-azure",
            "azure-client-id": SANDBOX_CLIENT_ID,
            "azure-tenant-id": sandbox["azure_tenant_id"],
            "azure-scopes": "https://management.azure.com/.default\n" + VAULT + "\n",
        },
        env,
        tmp_path,
    )
    assert run.exit_code == 0, run.log
    allowed, refused = [json.loads(line) for line in run.log.splitlines() if line.startswith("{")]
    assert allowed["whoami"]["claims"]["appid"] == SANDBOX_CLIENT_ID
    assert allowed["whoami"]["claims"]["tid"] == SANDBOX_TENANT_ID
    assert not refused["ok"]
    assert "may not get tokens for 'https://graph.microsoft.com'" in refused["error"]
    ledger = [
        json.loads(line) for line in Path(run.outputs["ledger-path"]).read_text().splitlines()
    ]
    issued = [e for e in ledger if e["event"] == "credential.issued" and e["cloud"] == "azure"]
    assert [e["resource"] for e in issued] == [
        "https://management.azure.com",
        "https://vault.azure.net",
    ]
    assert run.outputs["invocation-id"] == issued[0]["invocation_id"]
    masked = {
        fingerprint(line.removeprefix("::add-mask::"))
        for line in run.log.splitlines()
        if line.startswith("::add-mask::")
    }
    assert {e["fingerprint"] for e in issued} <= masked
    assert Path(runner_env["GITHUB_ENV"]).read_text() == ""


# The script forges what the action used to read back: ledger lines of its own, chained to
# the real ones, whose values carry line breaks (an extra output line, if they were copied).
FORGER = r"""
import hashlib, json, os
path = os.environ["NHI_LEDGER"]
last = open(path, "rb").read().splitlines()[-1]
forged = {
    "v": 1, "time": "2026-12-01T00:00:00Z", "event": "credential.issued",
    "invocation_id": "forged\nevil-output=pwned", "step_id": "x",
    "prev": hashlib.sha256(last).hexdigest(), "cloud": "aws", "purpose": "child",
    "principal": "arn:aws:sts::999999999999:assumed-role/evil/x\nevil-output=pwned",
}
with open(path, "a") as ledger:
    ledger.write(json.dumps(forged, separators=(",", ":")) + "\n")
"""


def test_outputs_come_from_nhi_invoke_not_from_ledger_lines_the_script_forged(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    forger = tmp_path / "forger.py"
    forger.write_text(FORGER)
    script = f'"{sys.executable}" "{CHILD}" "{report}"\n"{sys.executable}" "{forger}"'
    run = run_action(
        ROOT,
        {"run": script, "step-id": "forged", "aws-role-arn": sandbox["target_role_arn"]},
        runner_env,
        tmp_path,
    )
    assert run.exit_code == 0, run.log
    identity = json.loads(report.read_text())
    documented = set(yaml.safe_load((ROOT / "action.yml").read_text())["outputs"])
    assert set(run.step_outputs["run"]) == documented
    assert run.outputs == {
        "invocation-id": identity["values"]["NHI_INVOCATION_ID"],
        "aws-principal-arn": identity["arn"],
        "gcp-service-account": "",
        "ledger-path": str(Path(runner_env["RUNNER_TEMP"]) / "nhi-invoke" / "ledger.jsonl"),
    }
    written = (tmp_path / "output-run").read_text()
    assert "pwned" not in written
    assert "999999999999" not in written
    # Each value in GitHub's multi-line-safe form, behind a delimiter of its own.
    (delimiter,) = {line.split("<<", 1)[1] for line in written.splitlines() if "<<" in line}
    assert delimiter.startswith("ghadelimiter_")
    assert written.count(f"<<{delimiter}\n") == len(documented)


def test_the_install_refuses_a_wheel_whose_hash_is_not_in_the_lock_and_leaves_no_venv(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    """A compromised release of a dependency, as pip finds it: same name, other bytes."""
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    for wheel in WHEELHOUSE.iterdir():
        if wheel.name.startswith("six-"):
            tampered = wheelhouse / wheel.name
            shutil.copy(wheel, tampered)
            with zipfile.ZipFile(tampered, "a") as archive:
                archive.writestr("six_payload.py", "print('runs with the request token')\n")
        else:
            (wheelhouse / wheel.name).symlink_to(wheel)
    job = tmp_path / "job"
    job.mkdir()
    env = runner_env | {"RUNNER_TEMP": str(job), "PIP_FIND_LINKS": str(wheelhouse)}
    run = run_action(
        ROOT, {"run": "true", "aws-role-arn": sandbox["target_role_arn"]}, env, tmp_path
    )
    assert run.exit_code != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE" in run.log
    assert "six==" in run.log
    assert not list(job.glob("nhi-invoke-venv-*/bin/nhi-invoke"))
    assert "run" not in run.step_outputs  # the script never ran


def test_the_installed_environment_is_read_only_and_built_from_the_lock(
    runner_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    run = run_action(
        ROOT, {"run": "true", "aws-role-arn": sandbox["target_role_arn"]}, runner_env, tmp_path
    )
    assert run.exit_code == 0, run.log
    venv = Path(run.step_outputs["install"]["bin"]).parent.parent
    assert venv.parent == Path(runner_env["RUNNER_TEMP"])
    writable = [
        p
        for p in (venv, *venv.rglob("*"))
        if not p.is_symlink() and p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    ]
    assert writable == []
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    locked = {
        line.split(" ")[0].lower()
        for line in (ROOT / "action" / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    ours = {line.lower().replace("_", "-").replace(".", "-") for line in installed}
    assert {lock.replace("_", "-").replace(".", "-") for lock in locked} <= ours
    extra = {line for line in ours if line.split("==")[0] not in {"pip", "nhi-invoke"}} - {
        lock.replace("_", "-").replace(".", "-") for lock in locked
    }
    assert extra == set()  # nothing but the lock, pip itself and nhi-invoke


def test_the_action_gives_the_script_a_vault_token_and_secrets_revoked_after_it(
    runner_env: dict[str, str], vault: Any, tmp_path: Path
) -> None:
    from tests.e2e.vault_runs import CHILD_VAULT  # noqa: PLC0415
    from tests.vault_fixtures import bao  # noqa: PLC0415

    report = tmp_path / "report.json"
    run = run_action(
        ROOT,
        {
            "run": f'"{sys.executable}" "{CHILD_VAULT}" "{report}" lookup',
            "step-id": "read-secrets",
            "vault-addr": vault.address,
            "vault-role": vault.role,
            "vault-secrets": (
                f"{vault.kv2.api_path} api_key | DEPLOY_KEY ;\n"
                f"{vault.kv1.api_path} password | LEGACY_PASSWORD\n"
            ),
        },
        runner_env | {"NHI_TEST_BAO": vault.binary},
        tmp_path,
    )
    assert run.exit_code == 0, run.log
    seen = json.loads(report.read_text())
    assert seen["values"]["DEPLOY_KEY"] == vault.kv2.fields["api_key"].reveal()
    assert seen["values"]["LEGACY_PASSWORD"] == vault.kv1.fields["password"].reveal()
    assert seen["results"][0]["code"] == 0
    masked = {
        line.removeprefix("::add-mask::")
        for line in run.log.splitlines()
        if line.startswith("::add-mask::")
    }
    assert set(seen["secrets"]) <= masked
    token = seen["values"]["VAULT_TOKEN"]
    assert bao(vault, tmp_path, "token", "lookup", token=token).returncode == 2
    assert run.outputs["invocation-id"]
    assert Path(runner_env["GITHUB_ENV"]).read_text() == ""

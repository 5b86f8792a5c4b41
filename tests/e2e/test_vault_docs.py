"""docs/vault.md and ci-examples/github/vault.yml, as written: the operator's commands, the
policy and the role applied to a real OpenBao (the test issuer, address and repository in
place of GitHub's, names suffixed so as not to touch the session's), then the documented
`nhi-invoke` lines run against them."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from nhi_invoke.sandbox.vault import DatabaseEngine, VaultSandbox
from tests.e2e.runs import NHI, RUNS, Result, run_nhi
from tests.e2e.vault_runs import CHILD_VAULT, report_of, runs_begin, vault_env, vault_events

pytestmark = pytest.mark.e2e
__all__ = ["vault_env"]  # a fixture
ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "vault.md").read_text()
EXAMPLE = yaml.safe_load((ROOT / "ci-examples" / "github" / "vault.yml").read_text())
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
ADDRESS = "https://vault.example.com:8200"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.DOTALL)


def _command(prefix: str) -> list[str]:
    (line,) = [b.strip() for b in _blocks("sh") if b.strip().startswith(prefix)]
    return shlex.split(line)


def _ours(text: str, vault: VaultSandbox, sandbox: dict[str, Any]) -> str:
    """The documented text with this session's issuer, address, repository and names."""
    return (
        text.replace(GITHUB_ISSUER, sandbox["oidc_issuer"])
        .replace(ADDRESS, vault.address)
        .replace("my-org/my-repo", vault.repository)
        .replace("auth enable jwt", "auth enable -path=jwt-docs jwt")
        .replace("auth/jwt/", "auth/jwt-docs/")
        .replace("ci-deploy", "ci-deploy-docs")
    )


@pytest.fixture(scope="module")
def documented_role(
    vault: VaultSandbox,
    vault_database: DatabaseEngine,
    sandbox: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The operator's setup, as docs/vault.md gives it."""
    folder = tmp_path_factory.mktemp("vault-docs")
    (setup,) = [b for b in _blocks("sh") if b.startswith("bao auth enable jwt")]
    policy, recovery = _blocks("hcl")
    (role,) = _blocks("json")
    (folder / "ci-deploy-docs.hcl").write_text(_ours(policy, vault, sandbox))
    (folder / "ci-deploy-docs-role.json").write_text(_ours(role, vault, sandbox))
    (folder / "recovery.hcl").write_text(recovery)
    env = {
        "PATH": os.defpath,
        "HOME": str(folder),
        "VAULT_ADDR": vault.address,
        "VAULT_TOKEN": vault.root_token.reveal(),
    }
    for line in _ours(setup, vault, sandbox).strip().splitlines():
        argv = shlex.split(line)
        assert argv[0] == "bao"
        done = subprocess.run(
            [vault.binary, *argv[1:]],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, (line, done.stderr)
    return "ci-deploy-docs"


def _child_instead(argv: list[str], report: Path, *actions: str) -> list[str]:
    return [*argv[: argv.index("--")], "--", "python3", CHILD_VAULT, str(report), *actions]


def test_the_documented_role_policy_and_run_line_work_as_written(
    vault: VaultSandbox,
    documented_role: str,
    vault_env: dict[str, str],
    sandbox: dict[str, Any],
    tmp_path: Path,
) -> None:
    argv = shlex.split(_ours(shlex.join(_command("nhi-invoke run --vault-addr")), vault, sandbox))
    assert argv[argv.index("--vault-role") + 1] == documented_role
    report = tmp_path / "report.json"
    args = [*_child_instead(argv[1:], report, "lookup", "psql")]
    result = run_nhi([*args[:1], "--vault-auth-path", "jwt-docs", *args[1:]], vault_env)
    assert result.code == 0, result.stderr
    seen = report_of(report)
    assert seen["values"]["DEPLOY_KEY"] == vault.kv2.fields["api_key"].reveal()
    lookup, connected = seen["results"]
    assert lookup["code"] == 0, lookup["stderr"]
    meta = lookup["data"]["data"]["meta"]
    assert {k: meta[k] for k in ("repository", "run_id", "workflow_ref", "actor")} == {
        "repository": vault.repository,
        "run_id": vault_env["GITHUB_RUN_ID"],
        "workflow_ref": vault_env["GITHUB_WORKFLOW_REF"],
        "actor": vault_env["GITHUB_ACTOR"],
    }
    assert lookup["data"]["data"]["display_name"].startswith("jwt-docs-repo:")
    assert connected["code"] == 0, connected["stderr"]


def test_the_ci_examples_secrets_read_as_written(
    vault: VaultSandbox, documented_role: str, vault_env: dict[str, str], tmp_path: Path
) -> None:
    (step,) = [s for s in EXAMPLE["jobs"]["deploy"]["steps"] if s.get("id") == "deploy"]
    given = step["with"]
    assert given["vault-role"] == "ci-deploy"
    report = tmp_path / "report.json"
    env = vault_env | {
        "NHI_VAULT_ADDR": vault.address,
        "NHI_VAULT_ROLE": documented_role,
        "NHI_VAULT_AUTH_PATH": "jwt-docs",
        "NHI_VAULT_SECRETS": given["vault-secrets"],
    }
    result = run_nhi(
        ["run", "--step-id", given["step-id"], "--", "python3", CHILD_VAULT, str(report), "psql"],
        env,
    )
    assert result.code == 0, result.stderr
    seen = report_of(report)
    assert {"DEPLOY_KEY", "PGUSER", "PGPASSWORD"} <= set(seen["names"])
    assert seen["results"][0]["code"] == 0


def test_the_documented_recovery_policy_and_revoke_line_end_a_crashed_invocation(
    vault: VaultSandbox, documented_role: str, vault_env: dict[str, str], tmp_path: Path
) -> None:
    policy = _blocks("hcl")[1]
    root = {"PATH": os.defpath, "HOME": str(tmp_path), "VAULT_ADDR": vault.address}
    root |= {"VAULT_TOKEN": vault.root_token.reveal()}
    (tmp_path / "recovery.hcl").write_text(policy)
    for argv in (
        ["policy", "write", "nhi-recovery-docs", "recovery.hcl"],
        ["token", "create", "-policy=nhi-recovery-docs", "-no-default-policy", "-field=token"],
    ):
        done = subprocess.run(
            [vault.binary, *argv],
            cwd=tmp_path,
            env=root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    operator = done.stdout.strip()
    (tmp_path / "operator-token").write_text(operator)
    (tmp_path / "operator.json").write_text(json.dumps({"secrets": [operator]}))  # the sweep
    runs_begin()
    ready, report = tmp_path / "pid", tmp_path / "crashed.json"
    args = ["run", "--step-id", "s", "--vault-addr", vault.address, "--vault-role", documented_role]
    args += [
        "--vault-auth-path",
        "jwt-docs",
        "--",
        "python3",
        CHILD_VAULT,
        str(report),
        f"pid:{ready}",
    ]
    proc = subprocess.Popen(
        [NHI, *args], env=vault_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    os.killpg(int(ready.read_text()), signal.SIGKILL)
    RUNS.append(Result(proc.returncode or -9, *proc.communicate(timeout=30)))
    revoke = _command("nhi-invoke revoke --vault-token-file")
    result = run_nhi(revoke[1:], vault_env, cwd=str(tmp_path))
    assert result.code == 0, result.stderr
    (revoked,) = vault_events(vault_env, "credential.revoked")
    assert (revoked["revocation"], revoked["with"]) == ("revoke-accessor", "--vault-token-file")
    token = report_of(report)["values"]["VAULT_TOKEN"]
    lookup = subprocess.run(
        [vault.binary, "token", "lookup"],
        env=root | {"VAULT_TOKEN": token},
        capture_output=True,
        check=False,
        text=True,
    )
    assert lookup.returncode == 2


def test_the_documented_sandbox_line_prints_the_database_user(
    base_env: dict[str, str], vault: VaultSandbox, vault_database: DatabaseEngine
) -> None:
    argv = _command("nhi-invoke sandbox --cloud vault")
    path = os.pathsep.join([os.path.dirname(vault_database.postgres.psql), base_env["PATH"]])
    result = run_nhi(argv[1:], base_env | {"PATH": path}, timeout=120)
    assert result.code == 0, result.stderr
    assert re.fullmatch(r"v-jwt-repo-readonly-[A-Za-z0-9]{20}-\d{10}\n", result.stdout)

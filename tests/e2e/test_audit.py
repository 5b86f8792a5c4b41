"""The ledger audits as real processes: show, verify, key init."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import ledger_events, ledger_path, run_nhi

pytestmark = pytest.mark.e2e


def test_audit_show_lists_each_invocation_with_its_exposure(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    for step in ("show-a", "show-b"):
        assert (
            run_nhi(
                [
                    "run",
                    "--step-id",
                    step,
                    "--aws-role-arn",
                    sandbox["target_role_arn"],
                    "--",
                    "true",
                ],
                github_env,
            ).code
            == 0
        )
    result = run_nhi(["audit", "show", str(ledger_path(github_env)), "--json"], github_env)
    shown = json.loads(result.stdout)
    assert (shown["command"], shown["verification"]["ok"]) == ("audit show", True)
    rows = shown["invocations"]
    assert [r["step_id"] for r in rows] == ["show-a", "show-b"]
    assert all(r["ended"] == "expiring" and 800 < r["exposure_seconds"] <= 900 for r in rows)
    assert rows[0]["ci_run"].endswith(f"#{sandbox['environ']['GITHUB_RUN_ID']}/1")
    only = run_nhi(
        ["audit", "show", str(ledger_path(github_env)), "--json", "--step", "show-b"], github_env
    )
    assert [r["step_id"] for r in json.loads(only.stdout)["invocations"]] == ["show-b"]
    table = run_nhi(["audit", "show", str(ledger_path(github_env))], github_env)
    assert "show-a" in table.stdout
    assert "expiring" in table.stdout
    # People read minutes and seconds, and ISO 8601 times in UTC.
    assert re.search(r"│ (15m|14m \d+s) +│", table.stdout), table.stdout
    assert " s │" not in table.stdout
    assert re.search(r"│ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +│", table.stdout)


def test_audit_show_on_a_tampered_ledger_warns_and_exits_1(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    env = github_env | {"NHI_LEDGER_KEY": "a-ledger-key-from-ci-secrets-0123456789"}
    ran = run_nhi(["run", "--step-id", "t", *_role(sandbox), "--", "true"], env)
    assert ran.code == 0, ran.stderr
    path = ledger_path(env)
    intact = run_nhi(["audit", "show", str(path)], env)
    assert (intact.code, intact.stderr) == (0, "")
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"step_id":"t"', '"step_id":"u"')
    path.write_text("\n".join(lines) + "\n")
    shown = run_nhi(["audit", "show", str(path)], env)
    assert shown.code == 1
    assert "invocation" in shown.stdout  # still listed, for the investigation
    (warning,) = shown.stderr.splitlines()
    assert warning.startswith(f"nhi-invoke: warning: {path}: line 2 has a wrong HMAC")
    assert f"run 'nhi-invoke audit verify {path}'" in warning
    as_json = run_nhi(["audit", "show", str(path), "--json"], env)
    assert as_json.code == 1
    verification = json.loads(as_json.stdout)["verification"]
    assert (verification["ok"], verification["broken_line"]) == (False, 2)
    # Without the key the chain still catches it, one line later.
    assert run_nhi(["audit", "show", str(path)], github_env).code == 1


def _role(sandbox: dict[str, Any]) -> list[str]:
    return ["--aws-role-arn", sandbox["target_role_arn"]]


def test_job_summary_names_the_credentials_and_no_secret(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    env = github_env | {"GITHUB_STEP_SUMMARY": str(summary)}
    result = run_nhi(
        [
            "run",
            "--step-id",
            "summary",
            "--aws-oidc-role-arn",
            sandbox["entry_role_arn"],
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--aws-revoke",
            "--",
            "true",
        ],
        env,
    )
    assert result.code == 0, result.stderr
    text = summary.read_text()
    assert "### nhi-invoke: `summary`" in text
    assert "revoked (deny policy)" in text
    assert "assumed-role/nhi-sandbox-deploy/summary." in text
    head = ledger_events(env)[-1]
    verify = run_nhi(
        [
            "audit",
            "verify",
            str(ledger_path(env)),
            "--head",
            text.split("Ledger head `")[1].split("`")[0],
        ],
        env,
    )
    assert verify.code == 0, verify.stderr
    assert head["event"] == "invocation.finished"
    for secret in result.secrets:
        assert secret not in text


def test_audit_verify_names_the_broken_line_and_exits_1(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    env = github_env | {"NHI_LEDGER_KEY": "a-ledger-key-from-ci-secrets-0123456789"}
    assert (
        run_nhi(
            ["run", "--step-id", "v", "--aws-role-arn", sandbox["target_role_arn"], "--", "true"],
            env,
        ).code
        == 0
    )
    path = ledger_path(env)
    good = run_nhi(["audit", "verify", str(path)], env)
    assert good.code == 0, good.stderr
    assert "hash chain and HMACs" in good.stdout
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"purpose":"child"', '"purpose":"entry"')
    path.write_text("\n".join(lines) + "\n")
    bad = run_nhi(["audit", "verify", str(path)], env)
    assert bad.code == 1
    assert "line 2 has a wrong HMAC" in bad.stderr
    chain_only = run_nhi(["audit", "verify", str(path)], github_env)
    assert chain_only.code == 1
    assert "line 3 does not follow line 2" in chain_only.stderr
    assert "hash chain only" in chain_only.stderr


def test_a_keyring_key_signs_new_lines_after_key_init(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    root = str(Path(__file__).parent.parent.parent)
    env = github_env | {
        "PYTHON_KEYRING_BACKEND": "tests.keyring_file_backend.FileKeyring",
        "TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
        "PYTHONPATH": root,
    }
    init = run_nhi(["audit", "key", "init"], env)
    assert init.code == 0, init.stderr
    key_id = init.stdout.split("ledger key ")[1].split()[0]
    assert (
        run_nhi(
            ["run", "--step-id", "k", "--aws-role-arn", sandbox["target_role_arn"], "--", "true"],
            env,
        ).code
        == 0
    )
    assert {e["key_id"] for e in ledger_events(env)} == {key_id}
    verified = run_nhi(["audit", "verify", str(ledger_path(env))], env)
    assert verified.code == 0, verified.stderr
    assert f"HMACs (key {key_id})" in verified.stdout
    # On a machine without the key, the same ledger verifies by its chain only, and says so.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    chain_only = run_nhi(
        ["audit", "verify", str(ledger_path(env))], github_env | {"HOME": str(elsewhere)}
    )
    assert chain_only.code == 0, chain_only.stderr
    assert "hash chain only" in chain_only.stdout
    assert "anyone could have re-chained it" in chain_only.stdout


def test_key_init_without_a_keyring_says_to_use_the_variable(base_env: dict[str, str]) -> None:
    env = base_env | {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = run_nhi(["audit", "key", "init"], env)
    assert result.code == 78
    assert "NHI_LEDGER_KEY" in result.stderr

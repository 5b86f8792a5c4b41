"""`nhi-invoke sandbox -- CMD` end to end, and `nhi-invoke token` against the sandbox issuer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import child_command, run_nhi

pytestmark = pytest.mark.e2e


def test_sandbox_runs_the_command_with_its_own_identity(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    ledger = tmp_path / "ledger.jsonl"
    result = run_nhi(
        [
            "sandbox",
            "--step-id",
            "try-me",
            "--chained",
            "--ledger",
            str(ledger),
            "--",
            *child_command(report),
        ],
        base_env,
        timeout=120,
    )
    assert result.code == 0, result.stderr
    arn = json.loads(report.read_text())["arn"]
    assert ":assumed-role/nhi-sandbox-deploy/try-me." in arn
    assert "OIDC issuer (GitHub token protocol) at http://127.0.0.1:" in result.stderr
    assert f"runs as {arn}" in result.stderr
    # On a terminal the sandbox must not print ::add-mask:: lines: they would show secrets.
    assert "::add-mask::" not in result.stdout
    secrets = json.loads(report.read_text())["secrets"]
    assert not any(s in result.stdout + result.stderr for s in secrets)
    assert ledger.exists()


def test_token_shows_claims_never_the_token_and_verifies_the_signature(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    result = run_nhi(["token", "--verify", "--json"], github_env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["claims"]["repository"] == sandbox["environ"]["GITHUB_REPOSITORY"]
    assert report["claims"]["aud"] == "sts.amazonaws.com"
    assert report["checks"] == "passed"
    assert report["signature"].startswith("valid (RS256")
    assert "eyJ" not in result.stdout + result.stderr


def test_token_with_another_audience_shows_claims_then_exits_65(
    github_env: dict[str, str], tmp_path: Path
) -> None:
    import jwt  # noqa: PLC0415

    path = tmp_path / "t.jwt"
    path.write_text(
        jwt.encode({"aud": "other", "exp": 4_000_000_000, "sub": "s"}, "k" * 32, algorithm="HS256")
    )
    result = run_nhi(["token", "--token-file", str(path)], github_env)
    assert result.code == 65
    assert "other" in result.stdout
    assert result.stderr.count("\n") == 1


def test_sandbox_cloud_both_gives_every_emulated_identity(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    seen = tmp_path / "seen.txt"
    probe = (
        "import os, sys; open(sys.argv[1], 'w').write(' '.join(sorted(n for n in os.environ "
        "if n in ('AWS_SESSION_TOKEN', 'CLOUDSDK_AUTH_ACCESS_TOKEN'))))"
    )
    args = ["sandbox", "--quiet", "--ledger", str(tmp_path / "l.jsonl")]
    result = run_nhi([*args, "--cloud", "both", "--", sys.executable, "-c", probe, str(seen)],
                     base_env, timeout=120)  # fmt: skip
    assert result.code == 0, result.stderr
    assert seen.read_text() == "AWS_SESSION_TOKEN CLOUDSDK_AUTH_ACCESS_TOKEN"
    bad = run_nhi([*args, "--cloud", "azurex", "--", "true"], base_env)
    assert bad.code == 78  # a value that is not one of the choices: configuration
    assert "'azurex' is not one of aws, gcp" in bad.stderr

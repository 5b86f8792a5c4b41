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
    # The fix names `token`'s own option, not `run`'s --aws-audience.
    assert "(--audience 'other')" in result.stderr
    assert "--aws-audience" not in result.stderr


def test_token_shows_times_and_a_missing_claim_as_people_read_them(
    github_env: dict[str, str], tmp_path: Path
) -> None:
    import jwt  # noqa: PLC0415

    path = tmp_path / "t.jwt"
    claims = {"aud": "sts.amazonaws.com", "iat": 1_796_282_940, "sub": "s"}  # no exp, no kid
    path.write_text(jwt.encode(claims, "k" * 32, algorithm="HS256"))
    result = run_nhi(["token", "--token-file", str(path)], github_env)
    assert result.code == 65
    assert "2026-12-03T07:29:00Z" in result.stdout  # iat, in ISO 8601 UTC
    assert "1796282940" not in result.stdout
    assert "None" not in result.stdout
    assert "missing: the token has no 'exp' claim" in result.stdout
    assert "no 'exp' claim" in result.stderr
    assert " ago" not in result.stderr
    as_json = json.loads(run_nhi(["token", "--token-file", str(path), "--json"], github_env).stdout)
    assert as_json["claims"]["iat"] == 1_796_282_940  # JSON keeps the number
    assert as_json["expires_in_seconds"] is None


def test_an_expired_token_says_how_long_ago_in_minutes(
    github_env: dict[str, str], tmp_path: Path
) -> None:
    import time  # noqa: PLC0415

    import jwt  # noqa: PLC0415

    path = tmp_path / "t.jwt"
    expired = int(time.time()) - 3 * 3600 - 125
    claims = {"aud": "sts.amazonaws.com", "exp": expired, "sub": "s"}
    path.write_text(jwt.encode(claims, "k" * 32, algorithm="HS256"))
    result = run_nhi(["token", "--token-file", str(path)], github_env)
    assert result.code == 65
    assert "the OIDC token expired 3h 2m" in result.stderr
    assert "s ago" in result.stderr


def test_sandbox_tag_without_chained_fails_before_any_emulator_starts(
    base_env: dict[str, str],
) -> None:
    result = run_nhi(["sandbox", "--tag", "team=web", "--", "true"], base_env)
    assert result.code == 78
    (line,) = result.stderr.splitlines()  # no "sandbox: ... at http://127.0.0.1" first
    assert line.endswith("fix: add --chained")
    assert "--aws-oidc-role-arn" not in line


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

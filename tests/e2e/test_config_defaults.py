"""Defaults for one cloud never break a step of another: a broker is used when its first
option (`--aws-role-arn`, `--gcp-provider`) is given for the step; its other options from
nhi-invoke.toml's [defaults] are then ignored, but given by a flag, an NHI_* variable or the
step's own table they are an error (docs/reference.md, "Config file")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import ledger_events, run_nhi

pytestmark = pytest.mark.e2e


def _config(tmp_path: Path, text: str) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "nhi-invoke.toml").write_text(text)
    return work


def _issued(env: dict[str, str]) -> set[str]:
    return {e["cloud"] for e in ledger_events(env) if e["event"] == "credential.issued"}


def test_a_gcp_only_step_runs_where_the_defaults_name_an_aws_entry_role(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    work = _config(
        tmp_path,
        "[defaults]\n"
        'aws-region = "eu-west-1"\n'
        f'aws-oidc-role-arn = "{sandbox["entry_role_arn"]}"\n'
        "aws-duration = 1800\n"
        'tags = { team = "web" }\n',
    )
    result = run_nhi(
        [
            "run",
            "--step-id",
            "publish",
            "--gcp-provider",
            sandbox["gcp_provider"],
            "--gcp-service-account",
            sandbox["gcp_service_account"],
            "--",
            "true",
        ],
        github_env,
        cwd=work,
    )
    assert result.code == 0, result.stderr
    assert _issued(github_env) == {"gcp"}


def test_an_aws_only_step_runs_where_the_defaults_name_gcp_options(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    work = _config(
        tmp_path,
        "[defaults]\n"
        f'gcp-service-account = "{sandbox["gcp_service_account"]}"\n'
        "gcp-lifetime = 300\n"
        'gcp-project = "my-project"\n',
    )
    result = run_nhi(
        ["run", "--step-id", "deploy", "--aws-role-arn", sandbox["target_role_arn"], "--", "true"],
        github_env,
        cwd=work,
    )
    assert result.code == 0, result.stderr
    assert _issued(github_env) == {"aws"}


def test_the_defaults_apply_to_the_steps_that_use_their_cloud(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    work = _config(
        tmp_path,
        '[defaults]\naws-oidc-role-arn = "arn:aws:iam::111122223333:role/ci-entry"\n'
        "aws-duration = 1800\n",
    )
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--aws-role-arn",
            "arn:aws:iam::111122223333:role/x",
            "--",
            "true",
        ],
        base_env,
        cwd=work,
    )
    assert result.code == 0, result.stderr
    aws = json.loads(result.stdout)["aws"]
    assert (aws["entry_role_arn"], aws["duration_seconds"]) == (
        "arn:aws:iam::111122223333:role/ci-entry",
        1800,
    )


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ({"flag": ["--aws-oidc-role-arn", "arn:aws:iam::111122223333:role/ci-entry"]},
         "--aws-oidc-role-arn is given (by --aws-oidc-role-arn) but --aws-role-arn is not"),
        ({"env": {"NHI_AWS_DURATION": "1800"}},
         "--aws-duration is given (by NHI_AWS_DURATION) but --aws-role-arn is not"),
        ({"step": 'aws-region = "eu-west-1"\n'},
         "--aws-region is given (by aws-region in "),
        ({"flag": ["--gcp-lifetime", "300"]},
         "--gcp-lifetime is given (by --gcp-lifetime) but no --gcp-service-account"),
    ],
    ids=["flag", "variable", "step table", "lifetime without account"],
)  # fmt: skip
def test_another_clouds_option_given_for_this_step_is_an_error(
    base_env: dict[str, str], tmp_path: Path, how: dict[str, Any], needle: str
) -> None:
    work = _config(tmp_path, "[steps.publish]\n" + how.get("step", ""))
    provider = "projects/123456789/locations/global/workloadIdentityPools/ci-pool/providers/github"
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--step-id",
            "publish",
            "--gcp-provider",
            provider,
            *how.get("flag", []),
            "--",
            "true",
        ],
        base_env | how.get("env", {}),
        cwd=work,
    )
    assert result.code == 78, result.stderr
    assert needle in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_lifetime_in_the_defaults_is_ignored_by_a_step_without_a_service_account(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    work = _config(tmp_path, "[defaults]\ngcp-lifetime = 5000\n")
    provider = "projects/123456789/locations/global/workloadIdentityPools/ci-pool/providers/github"
    result = run_nhi(
        ["run", "--dry-run", "--json", "--gcp-provider", provider, "--", "true"], base_env, cwd=work
    )
    assert result.code == 0, result.stderr
    warnings = json.loads(result.stdout)["warnings"]
    # One warning about the federated token, none that contradicts it about a lifetime.
    assert [w for w in warnings if "gcp" in w.lower()] == [
        "no --gcp-service-account: the federated token itself is handed over; it lives as long "
        "as the OIDC token allows (up to 1 h) and its lifetime cannot be chosen"
    ]

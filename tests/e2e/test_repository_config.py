"""A repository's nhi-invoke.toml cannot widen a step: the settings that decide what the
command can reach come from the pipeline alone (docs/threat-model.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import ledger_path, run_nhi

pytestmark = pytest.mark.e2e
REFUSED = [
    ("keep-oidc-env", "true", "--keep-oidc-env or NHI_KEEP_OIDC_ENV"),
    ("token-file", '"/tmp/token"', "--token-file or NHI_TOKEN_FILE"),
    ("token-env", '"MY_TOKEN"', "--token-env or NHI_TOKEN_ENV"),
    ("token-command", '"curl https://evil.example/token"', "--token-command or NHI_TOKEN_COMMAND"),
    ("on-behalf-of", '"ceo@example.com"', "--on-behalf-of or NHI_ON_BEHALF_OF"),
    ("ledger", '"ledger.jsonl"', "--ledger or NHI_LEDGER"),
    ("ledger-key-file", '"ledger.key"', "--ledger-key-file or NHI_LEDGER_KEY_FILE"),
    ("refresh-margin", "599", "--refresh-margin or NHI_REFRESH_MARGIN"),
    ("ca-bundle", '"/etc/ssl/certs/ca-certificates.crt"', "--ca-bundle or NHI_CA_BUNDLE"),
]


def _run(sandbox: dict[str, Any], marker: Path) -> list[str]:
    return [
        "run",
        "--step-id",
        "deploy",
        "--aws-role-arn",
        sandbox["target_role_arn"],
        "--",
        "sh",
        "-c",
        'env > "$0"',
        str(marker),
    ]


@pytest.mark.parametrize("table", ["defaults", "steps.deploy"])
@pytest.mark.parametrize(("key", "value", "instead"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_repository_config_that_widens_the_step_is_refused_before_anything_runs(
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    tmp_path: Path,
    table: str,
    key: str,
    value: str,
    instead: str,
) -> None:
    config = tmp_path / "nhi-invoke.toml"
    config.write_text(f'[{table}]\naws-region = "us-east-1"\n{key} = {value}\n')
    marker = tmp_path / "seen"
    result = run_nhi(_run(sandbox, marker), github_env, cwd=tmp_path)
    assert result.code == 78
    assert result.stderr.splitlines() == [
        f"nhi-invoke: error: {config}: {key} may not be set in the config file ([{table}]): "
        f"a repository may not choose it; fix: set it in the pipeline instead ({instead})"
    ]
    assert not marker.exists()  # the command never ran, and never saw the request token
    assert not ledger_path(github_env).exists()


def test_keep_oidc_env_from_the_pipeline_is_announced_on_every_run_and_masked(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    marker = tmp_path / "seen"
    result = run_nhi(_run(sandbox, marker), github_env | {"NHI_KEEP_OIDC_ENV": "true"})
    assert result.code == 0, result.stderr
    assert (
        "nhi-invoke: warning: --keep-oidc-env: the command can request OIDC tokens and mint "
        "identities of its own"
    ) in result.stderr.splitlines()
    request_token = github_env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    assert f"ACTIONS_ID_TOKEN_REQUEST_TOKEN={request_token}" in marker.read_text().splitlines()
    assert request_token in result.masked
    marker.unlink()  # it holds the request token, which the leak sweep now looks for

"""On GitHub every secret that reaches the command is masked before it starts: credentials,
and under --serve the endpoints' random path and authorization token (docs/threat-model.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import run_nhi

pytestmark = pytest.mark.e2e
SERVED = (
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "GCE_METADATA_HOST",
    "GCE_METADATA_IP",
    "GCE_METADATA_ROOT",
)
# Reports what it was served (for the leak sweep: the report is where secrets may be), then
# says on stdout that it started.
REPORTER = (
    "import json, os, sys\n"
    f"names = {SERVED!r}\n"
    "values = [os.environ[n] for n in names if n in os.environ]\n"
    "json.dump({'names': [n for n in names if n in os.environ], 'secrets': values},"
    " open(sys.argv[1], 'w'))\n"
    "print('command started', flush=True)\n"
)


def test_serve_masks_its_token_and_path_before_the_command_starts(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    report_path = tmp_path / "served.json"
    result = run_nhi(
        [
            "run",
            "--step-id",
            "served",
            "--serve",
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--gcp-provider",
            sandbox["gcp_provider"],
            "--gcp-service-account",
            sandbox["gcp_service_account"],
            "--",
            sys.executable,
            "-c",
            REPORTER,
            str(report_path),
        ],
        github_env,
    )
    assert result.code == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["names"] == list(SERVED)
    lines = result.stdout.splitlines()
    started = lines.index("command started")
    masked_before = {
        line.removeprefix("::add-mask::")
        for line in lines[:started]
        if line.startswith("::add-mask::")
    }
    token = report["secrets"][1]
    uri = report["secrets"][0]
    secret_path = uri.split("/")[3]  # http://127.0.0.1:PORT/<random>/aws
    assert len(secret_path) >= 32
    assert {token, secret_path} <= masked_before
    # A URL holding the random path is hidden with it (the runner masks every occurrence).
    assert all(any(m in secret for m in masked_before) for secret in report["secrets"])

"""Cleanup is total: a ledger that fails while the command runs stops no revocation, and the
failure is reported once, at the end, with exit 74 (docs/threat-model.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runs import deny_policies, ledger_path, run_nhi

pytestmark = pytest.mark.e2e
# The command moves the ledger away and leaves a link in its place (which nhi-invoke refuses
# to follow), then exits with the code it is given.
BREAK_LEDGER = 'mv "$NHI_LEDGER" "$NHI_LEDGER.moved" && ln -s /dev/null "$NHI_LEDGER"; exit "$0"'


@pytest.mark.parametrize(("command_code", "exit_code"), [("0", 74), ("5", 5)])
def test_a_ledger_that_breaks_during_the_command_still_revokes_and_exits_once_with_its_code(
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    command_code: str,
    exit_code: int,
) -> None:
    ledger = ledger_path(github_env)
    env = github_env | {"NHI_LEDGER": str(ledger)}
    result = run_nhi(
        [
            "run",
            "--step-id",
            f"broken-ledger-{command_code}",
            "--aws-oidc-role-arn",
            sandbox["entry_role_arn"],
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--aws-revoke",
            "--",
            "sh",
            "-c",
            BREAK_LEDGER,
            command_code,
        ],
        env,
    )
    assert result.code == exit_code, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [
        "nhi-invoke: error: 4 ledger lines were not written (cannot open the ledger "
        f"{ledger}: Too many levels of symbolic links); every credential was still ended; "
        "fix: pass --ledger (or NHI_LEDGER) a path in a folder only you can write; "
        "nhi-invoke creates it"
    ]
    # What was written before the command ran names the session, and it is denied now.
    written = [json.loads(line) for line in Path(f"{ledger}.moved").read_text().splitlines()]
    (child,) = [e for e in written if e["event"] == "credential.issued" and e["purpose"] == "child"]
    assert child["principal_id"] in deny_policies(sandbox).values()
    assert ledger.is_symlink()  # never followed, never written through

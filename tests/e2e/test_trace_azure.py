"""`audit trace --azure-signins` after a real `nhi-invoke run` with the Azure broker against the
Entra emulator, azure-identity as the step's command: the sign-in log is built from what the
emulator answered (the client id and correlation id of the token request) and the token the
command received (its `uti` and `iat`, as Entra logs them), in Microsoft Graph's and
Azure Monitor's shapes, with a foreign sign-in of the same app and a sign-in that reuses the
invocation's client-request-id after the command ended."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.sandbox.azure import EntraEmulator, EntraRequest
from nhi_invoke.sandbox.entra_directory import (
    SANDBOX_CLIENT_ID,
    SANDBOX_OBJECT_ID,
    SANDBOX_TENANT_ID,
)
from tests import entra_signins
from tests.azure_fixtures import AZURE_CHILD
from tests.e2e.runs import ledger_events, ledger_path, run_nhi

pytestmark = pytest.mark.e2e

ARM = "https://management.azure.com/.default"
FOREIGN_CORRELATION = "c0ffee00-1234-4abc-8def-0123456789ab"


@pytest.fixture
def azure_github_env(github_env: dict[str, str], entra: EntraEmulator) -> dict[str, str]:
    return github_env | {
        "AZURE_AUTHORITY_HOST": entra.url,
        "NHI_AZURE_CA_BUNDLE": entra.ca_file,
        "REQUESTS_CA_BUNDLE": entra.ca_file,
    }


def sign_in_of(request: EntraRequest, claims: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """The sign-in Entra logs for a token request it answered and the token it issued."""
    return entra_signins.sign_in(
        moment,
        app_id=request.form["client_id"],
        service_principal_id=SANDBOX_OBJECT_ID,
        correlation_id=request.correlation_id,
        token_id=claims["uti"],
        tenant_id=SANDBOX_TENANT_ID,
    )


def test_a_real_runs_sign_in_is_attributed_and_a_foreign_one_of_the_same_app_is_flagged(
    azure_github_env: dict[str, str], entra: EntraEmulator, tmp_path: Path
) -> None:
    run = run_nhi(
        [
            "run", "--step-id", "deploy",
            "--azure-client-id", SANDBOX_CLIENT_ID, "--azure-tenant-id", SANDBOX_TENANT_ID,
            "--", sys.executable, AZURE_CHILD, "managed", ARM,
        ],
        azure_github_env,
    )  # fmt: skip
    assert run.code == 0, run.stderr
    (child,) = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    claims = child["claims"]  # of the token the command received
    issued = datetime.fromtimestamp(claims["iat"], UTC)
    events = ledger_events(azure_github_env)
    (grant,) = [e for e in events if e["event"] == "credential.issued"]
    (exited,) = [e for e in events if e["event"] == "command.exited"]
    invocation = grant["invocation_id"]
    (asked,) = [r for r in entra.requests() if r.client_request_id == grant["client_request_id"]]
    assert asked.status == 200
    assert asked.token_fingerprint == grant["fingerprint"]

    ours = sign_in_of(asked, claims, issued)
    # Someone else holding the app's federated credential signs in while the step runs...
    foreign = entra_signins.sign_in(
        issued,
        app_id=SANDBOX_CLIENT_ID,
        service_principal_id=SANDBOX_OBJECT_ID,
        correlation_id=FOREIGN_CORRELATION,
        token_id="Zm9yZWlnbi10b2tlbi1pZA",
        ip_address="203.0.113.66",
    )
    # ...and once more after the command ended, replaying the invocation's client-request-id.
    ended = datetime.fromisoformat(exited["time"])
    replayed = sign_in_of(asked, claims, ended + timedelta(seconds=5)) | {
        "uniqueTokenIdentifier": "cmVwbGF5ZWQtdG9rZW4taWQ"
    }
    logs = tmp_path / "signins"
    logs.mkdir()
    entra_signins.write_graph_pages(logs / "signIns-page1.json", [ours])
    # The Azure Monitor export holds the same sign-in again (counted once) and the others.
    entra_signins.write_monitor_export(logs / "PT1H.json.gz", [ours, foreign, replayed])

    trace = [
        "audit", "trace", str(ledger_path(azure_github_env)), "--azure-signins", str(logs),
        "--json",
    ]  # fmt: skip
    result = run_nhi(trace, azure_github_env)
    assert result.code == 1, result.stderr  # --fail-on after-end (the default): the replay
    report = json.loads(result.stdout)
    assert report["command"] == "audit trace"
    assert report["read"] == [{"source": "azure", "files": 2, "events": 4}]
    by_id = {e["event_id"]: e for e in report["events"]}
    assert set(by_id) == {ours["id"], foreign["id"], replayed["id"]}
    mine = by_id[ours["id"]]
    assert (mine["source"], mine["invocation_id"], mine["match"]) == (
        "azure",
        invocation,
        "token-id",
    )
    assert (mine["after_end"], mine["unattributed"], mine["principal"]) == (
        False,
        False,
        SANDBOX_CLIENT_ID,
    )
    other = by_id[foreign["id"]]
    assert (other["invocation_id"], other["unattributed"], other["after_end"]) == (
        None,
        True,
        False,
    )
    late = by_id[replayed["id"]]
    assert (late["invocation_id"], late["match"], late["after_end"]) == (
        invocation,
        "client-request-id",
        True,
    )
    (traced,) = report["invocations"]
    assert traced["invocation_id"] == invocation
    assert traced["event_ids"] == [ours["id"], replayed["id"]]
    assert traced["credentials"][0]["token_id"] == grant["token_id"]

    unattributed = run_nhi([*trace, "--fail-on", "unattributed", "--event-id", foreign["id"]],
                           azure_github_env)  # fmt: skip
    assert unattributed.code == 1, unattributed.stderr
    (only,) = json.loads(unattributed.stdout)["events"]
    assert only["event_id"] == foreign["id"]
    table = run_nhi([*trace[:-1], "--fail-on", "none"], azure_github_env)
    assert table.code == 0, table.stderr
    assert "Entra sign-in" in table.stdout
    assert invocation in table.stdout

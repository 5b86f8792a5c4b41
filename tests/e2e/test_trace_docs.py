"""Every `nhi-invoke audit trace` command line of docs/trace.md and of the README runs, in a
folder laid out as the docs describe: ledgers in `artifacts/`, CloudTrail in `AWSLogs/` and
`lookup-events.json`, GCP entries in `gcp-audit.json`, a real OpenBao's audit log, Entra
sign-ins in `signins/`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nhi_invoke.ledger.records import rfc3339
from nhi_invoke.ledger.store import Ledger
from tests import entra_signins, trace_logs
from tests.e2e.conftest import NHI
from tests.e2e.trace_openbao import Bao, serve_bao

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/deploy"
SA = "publisher@my-project.iam.gserviceaccount.com"
FED = "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/subject/repo:o/r:ref:refs/heads/main"
LEAK = "3038ebd2-c98a-4c65-9b6e-e22506292313"
FOREIGN_KEY = "ASIAEXAMPLEFOREIGN01"
AZURE_APP = "9a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
AZURE_SP = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"
AZURE_CORRELATION = "2b4a8f3e-6c1d-5e7f-9a0b-1c2d3e4f5a6b"


def commands() -> list[str]:
    """The `nhi-invoke audit trace` lines of the docs' sh blocks."""
    found = []
    for doc in (ROOT / "docs" / "trace.md", ROOT / "README.md"):
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.DOTALL):
            found += [
                line for line in block.splitlines() if line.startswith("nhi-invoke audit trace")
            ]
    return found


@dataclass(frozen=True)
class Folder:
    path: Path
    env: dict[str, str]
    secrets: set[str]


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    yield from serve_bao(tmp_path_factory.mktemp("bao-docs"))


def _ledger(path: Path, invocation_id: str, step: str, start: datetime) -> Ledger:
    ledger = Ledger(str(path), invocation_id, step)
    ledger.append(
        "invocation.started",
        start,
        ci={"provider": "github", "repository": "o/r", "run_id": "77", "run_attempt": "1"},
    )
    return ledger


def _end(ledger: Ledger, at: datetime) -> None:
    ledger.append("command.exited", at, exit_code=0)
    ledger.append("invocation.finished", at, exit_code=0)


@pytest.fixture(scope="module")
def folder(bao: Bao, tmp_path_factory: pytest.TempPathFactory) -> Folder:
    root = tmp_path_factory.mktemp("docs-folder")
    start = datetime.now(UTC) - timedelta(minutes=5)
    # AWS: one invocation; a call after its command exited; a session nobody recorded.
    aws = _ledger(root / "artifacts" / "deploy" / "ledger.jsonl", "docsaws00001", "deploy", start)
    session = "deploy.77-1.docsaws00001"
    aws.append(
        "credential.issued",
        start,
        cloud="aws",
        purpose="child",
        principal=trace_logs.assumed_role_arn(ROLE, session),
        session_name=session,
        access_key_id="ASIADOCSCHILD0000001",
        fingerprint="sha256:aws",
        role_arn=ROLE,
        expires_at=rfc3339(start + timedelta(seconds=900)),
    )
    _end(aws, start + timedelta(seconds=20))
    records = [
        trace_logs.call(
            "docs-use",
            start + timedelta(seconds=5),
            key="ASIADOCSCHILD0000001",
            role_arn=ROLE,
            session=session,
        ),
        trace_logs.call(
            LEAK,
            start + timedelta(seconds=80),
            key="ASIADOCSCHILD0000001",
            role_arn=ROLE,
            session=session,
            event_name="ListBuckets",
            event_source="s3.amazonaws.com",
        ),
        trace_logs.call(
            "docs-foreign",
            start + timedelta(seconds=90),
            key=FOREIGN_KEY,
            role_arn=ROLE,
            session="by-hand",
        ),
    ]
    trace_logs.write_delivery(root, start, records)
    trace_logs.write_lookup(root / "lookup-events.json", records)
    # GCP: one invocation, its token call and a call with its token.
    gcp = _ledger(root / "artifacts" / "publish" / "ledger.jsonl", "docsgcp00001", "publish", start)
    for purpose, kind, principal in (("entry", "federated", FED), ("child", "service_account", SA)):
        gcp.append(
            "credential.issued",
            start,
            cloud="gcp",
            purpose=purpose,
            kind=kind,
            principal=principal,
            federated_principal=FED,
            request_reason="nhi-invoke invocation docsgcp00001",
            fingerprint=f"sha256:{purpose}",
            expires_at=rfc3339(start + timedelta(seconds=600)),
        )
    _end(gcp, start + timedelta(seconds=30))
    entries = [
        trace_logs.gcp_entry(
            "docs-mint",
            start,
            method="GenerateAccessToken",
            service="iamcredentials.googleapis.com",
            resource="projects/-/serviceAccounts/1",
            principal_subject=FED,
            reason="nhi-invoke invocation docsgcp00001",
        ),
        trace_logs.gcp_entry(
            "docs-upload",
            start + timedelta(seconds=3),
            method="storage.objects.create",
            service="storage.googleapis.com",
            resource="projects/_/buckets/b/objects/o",
            principal_email=SA,
            delegates=(FED,),
        ),
    ]
    (root / "gcp-audit.json").write_text(json.dumps(entries, indent=2))
    # Vault: a real token, its accessor in a ledger, its requests in the HMAC'ing audit log.
    policy = 'path "sys/audit-hash/file" { capabilities = ["update"] }\n'
    assert bao.run("policy", "write", "audit-hasher", "-", stdin=policy).returncode == 0
    hasher = json.loads(bao.run("token", "create", "-policy=audit-hasher", "-format=json").stdout)
    worker = json.loads(bao.run("token", "create", "-policy=default", "-format=json").stdout)
    vault = _ledger(
        root / "artifacts" / "migrate" / "ledger.jsonl", "docsvault001", "migrate", start
    )
    vault.append(
        "credential.issued",
        datetime.now(UTC),
        cloud="vault",
        purpose="child",
        principal="vault:token/role/migrate",
        accessor=worker["auth"]["accessor"],
        fingerprint="sha256:vault",
        expires_at=rfc3339(datetime.now(UTC) + timedelta(minutes=10)),
        leases=[],
    )
    assert bao.run("token", "lookup", token=worker["auth"]["client_token"]).returncode == 0
    _end(vault, datetime.now(UTC))
    shutil.copy(bao.logs / "audit-hmac.log", root / "vault-audit.log")
    # Azure: one token, its sign-in in a Graph page, a foreign sign-in of the app in an export.
    azure = _ledger(
        root / "artifacts" / "release" / "ledger.jsonl", "docsazure001", "release", start
    )
    azure.append(
        "credential.issued",
        start + timedelta(seconds=2),
        cloud="azure",
        purpose="child",
        principal=AZURE_APP,
        principal_id=AZURE_SP,
        fingerprint="sha256:azure",
        expires_at=rfc3339(start + timedelta(hours=1)),
        token_id="QWxsIHNpZ25zIHBvaW50",
        client_request_id=AZURE_CORRELATION,
    )
    _end(azure, start + timedelta(seconds=30))
    signed = {"app_id": AZURE_APP, "service_principal_id": AZURE_SP}
    (root / "signins").mkdir()
    entra_signins.write_graph_pages(
        root / "signins" / "signIns.json",
        [
            entra_signins.sign_in(
                start + timedelta(seconds=1),
                correlation_id=AZURE_CORRELATION,
                token_id="QWxsIHNpZ25zIHBvaW50",
                **signed,
            )
        ],
    )
    entra_signins.write_monitor_export(
        root / "signins" / "PT1H.json.gz",
        [
            entra_signins.sign_in(
                start + timedelta(seconds=9),
                correlation_id="c0ffee00-1234-4abc-8def-0123456789ab",
                token_id="Zm9yZWlnbg",
                **signed,
            )
        ],
    )
    env = {
        "PATH": os.path.dirname(NHI) + os.pathsep + os.environ["PATH"],
        "HOME": str(root),
        "VAULT_ADDR": bao.address,
        "NHI_VAULT_AUDIT_HASH_TOKEN": hasher["auth"]["client_token"],
    }
    secrets = {hasher["auth"]["client_token"], worker["auth"]["client_token"], bao.root_token}
    return Folder(root, env, secrets)


def test_the_docs_show_trace_command_lines() -> None:
    assert len(commands()) >= 10


@pytest.mark.parametrize("command", commands())
def test_every_trace_command_line_of_the_docs_runs(folder: Folder, command: str) -> None:
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=folder.path,
        env=folder.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    assert "error:" not in done.stderr
    for secret in folder.secrets:
        assert secret not in done.stdout + done.stderr
    if "--event-id" in command:
        assert "deploy · o/r#77/1" in done.stdout
        assert "USED AFTER END" in done.stdout
    if "--azure-signins" in command:
        assert "release · o/r#77/1" in done.stdout  # its sign-in, by the token's id
        assert done.returncode == 1  # --fail-on unattributed: the foreign sign-in
    if "--vault-audit" in command:
        assert "migrate · o/r#77/1" in done.stdout  # the HMAC'd log, matched through sys/audit-hash
    if "--print-sql" in command:
        text = done.stdout or (folder.path / "trace-athena.sql").read_text()
        assert "-- nhi-invoke audit trace:" in text
    if "> trace.json" in command:
        events = json.loads((folder.path / "trace.json").read_text())["events"]
        assert {e["event_id"] for e in events if e["after_end"]} == {LEAK}

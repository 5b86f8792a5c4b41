"""`audit trace` reads ledgers as `run` writes them: several at once, checked, never silently."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nhi_invoke.audit.trace import ledgers
from nhi_invoke.errors import ConfigError
from nhi_invoke.ledger.key import LedgerKey
from nhi_invoke.ledger.records import rfc3339
from nhi_invoke.ledger.store import Ledger

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
KEY = LedgerKey(b"a-test-key-of-sufficient-length", "test")


def write(path: Path, invocation_id: str, start: datetime, *, fails: bool = False) -> None:
    ledger = Ledger(str(path), invocation_id, "deploy", key=KEY)
    ledger.append(
        "invocation.started",
        start,
        ci={
            "provider": "github",
            "repository": "o/r",
            "run_id": "7",
            "run_attempt": "2",
            "sha": "abc123",
            "actor": "octocat",
        },
    )
    ledger.append(
        "credential.issued",
        start + timedelta(seconds=1),
        cloud="aws",
        purpose="child",
        principal=f"arn:aws:sts::123456789012:assumed-role/deploy/deploy.7-2.{invocation_id}",
        session_name=f"deploy.7-2.{invocation_id}",
        access_key_id=f"ASIA{invocation_id.upper():0>16}",
        fingerprint=f"sha256:{invocation_id}",
        expires_at=rfc3339(start + timedelta(seconds=901)),
        role_arn="arn:aws:iam::123456789012:role/deploy",
    )
    if fails:
        ledger.append("error", start + timedelta(seconds=2), exit_code=77, error="RefusedError")
    else:
        ledger.append("command.exited", start + timedelta(seconds=30), exit_code=0)
    ledger.append(
        "credential.expiring",
        start + timedelta(seconds=31),
        fingerprint=f"sha256:{invocation_id}",
        revocation="expire",
    )
    ledger.append(
        "invocation.finished", start + timedelta(seconds=31), exit_code=77 if fails else 0
    )


def test_ledgers_and_directories_of_job_artifacts_are_read_together(tmp_path: Path) -> None:
    write(tmp_path / "job-a" / "nhi-invoke" / "ledger.jsonl", "aaa", T0)
    write(tmp_path / "job-b" / "ledger.jsonl", "bbb", T0 + timedelta(minutes=1))
    single = tmp_path / "elsewhere.jsonl"
    write(single, "ccc", T0 - timedelta(minutes=1))
    shutil.copy(single, tmp_path / "job-b" / "copy-of-elsewhere.jsonl")
    invocations, problems = ledgers.load(
        [str(tmp_path / "job-a"), str(tmp_path / "job-b"), str(single)], KEY
    )
    assert problems == ()
    assert [i.invocation_id for i in invocations] == ["ccc", "aaa", "bbb"]
    first = invocations[1]
    assert (first.ci.repository, first.ci.run_id, first.ci.run_attempt, first.ci.sha) == (
        "o/r",
        "7",
        "2",
        "abc123",
    )
    assert first.command_ended_at == T0 + timedelta(seconds=30)
    (credential,) = first.credentials
    assert credential.access_key_id == "ASIA0000000000000AAA"
    assert credential.closed_at == T0 + timedelta(seconds=31)


def test_a_ledger_that_fails_verification_is_still_traced_and_said_so(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    write(path, "aaa", T0)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"exit_code":0', '"exit_code":1')
    path.write_text("\n".join(lines) + "\n")
    invocations, problems = ledgers.load([str(path)], KEY)
    assert [i.invocation_id for i in invocations] == ["aaa"]
    assert [p.one_line() for p in problems] == [
        f"{path}: fails verification: line 3 has a wrong HMAC: it was changed after it was "
        f"written; its invocations are still traced; fix: run 'nhi-invoke audit verify {path}' "
        "and find out who changed it"
    ]


def test_a_failure_before_the_command_started_ends_the_command_credentials(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    write(path, "aaa", T0, fails=True)
    (invocation,), _ = ledgers.load([str(path)], KEY)
    assert invocation.command_ended_at == T0 + timedelta(seconds=2)
    assert invocation.exit_code == 77


def test_files_that_are_not_ledgers_are_named(tmp_path: Path) -> None:
    write(tmp_path / "ledger.jsonl", "aaa", T0)
    other = tmp_path / "metrics.jsonl"
    other.write_text('{"cpu": 1}\nnot json\n')
    invocations, problems = ledgers.load([str(tmp_path)], None)
    assert len(invocations) == 1
    assert [p.one_line() for p in problems] == [
        f"{other}: holds no nhi-invoke ledger events; fix: pass the ledger `run` wrote"
    ]


def test_a_crashed_invocation_ends_when_recovery_closed_its_credentials(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(str(path), "crashed", "deploy")
    ledger.append("invocation.started", T0)
    ledger.append(
        "credential.issued",
        T0,
        cloud="aws",
        purpose="child",
        principal="arn:aws:sts::1:x",
        access_key_id="ASIACRASHED000000001",
        fingerprint="sha256:c",
        expires_at=rfc3339(T0 + timedelta(seconds=900)),
    )
    # The runner died; `nhi-invoke revoke` closed the credential later, from another process.
    Ledger(str(path), "crashed", "deploy").append(
        "credential.revoked",
        T0 + timedelta(seconds=300),
        fingerprint="sha256:c",
        revocation="deny-policy",
    )
    (invocation,), problems = ledgers.load([str(path)], None)
    assert problems == ()
    (credential,) = invocation.credentials
    assert (invocation.command_ended_at, invocation.finished_at) == (None, None)
    assert invocation.ended_at(credential) == T0 + timedelta(seconds=300)


def test_a_ledger_path_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"the ledger .*missing\.jsonl does not exist"):
        ledgers.load([str(tmp_path / "missing.jsonl")], None)


def test_a_renewed_credential_lives_until_its_last_updates_expiry(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(str(path), "vvv", "migrate", key=KEY)
    ledger.append("invocation.started", T0, ci={"provider": "github"})
    fields = {
        "cloud": "vault",
        "purpose": "child",
        "principal": "vault:jwt/role/ci",
        "fingerprint": "sha256:token",
        "accessor": "acc",
    }
    ledger.append("credential.issued", T0, **fields, expires_at=rfc3339(T0 + timedelta(seconds=60)))
    for renewal in (1, 2):
        renewed = T0 + timedelta(seconds=60 + 30 * renewal)
        ledger.append("credential.updated", T0, **fields, expires_at=rfc3339(renewed))
    invocations, problems = ledgers.load([str(path)], KEY)
    assert not problems
    ((credential,),) = [i.credentials for i in invocations]
    assert credential.expires_at == T0 + timedelta(seconds=120)

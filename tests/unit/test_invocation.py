"""One invocation against a scripted STS: a failure halfway leaves every credential recorded."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import jwt
import pytest

from nhi_invoke.errors import RefusedError
from nhi_invoke.invocation.prepare import Prepared, RunRequest, prepare
from nhi_invoke.invocation.process import run
from nhi_invoke.retry import RetryPolicy
from tests.scripted_server import ScriptedServer
from tests.sts_answers import OK
from tests.sts_answers import error as _error

ROLE = "arn:aws:iam::123456789012:role/deploy"
ENTRY = "arn:aws:iam::123456789012:role/entry"
FAST = RetryPolicy(attempts=2, base_seconds=0.01, cap_seconds=0.02, total_seconds=5)


def _prepare(tmp_path: Path, endpoint: str, marker: Path, entry: str | None = None) -> Prepared:
    token = tmp_path / "token"
    now = int(time.time())
    token.write_text(
        jwt.encode(
            {"aud": "sts.amazonaws.com", "sub": "repo:o/r", "exp": now + 300, "iat": now},
            "k" * 32,
            algorithm="HS256",
        )
    )
    given = {
        "step_id": "deploy",
        "aws_role_arn": ROLE,
        "token_file": str(token),
        "ledger": str(tmp_path / "ledger.jsonl"),
        "aws_oidc_role_arn": entry,
    }
    environ = {"AWS_ENDPOINT_URL_STS": endpoint, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    request = RunRequest(given, ("touch", str(marker)))
    return prepare(request, environ, str(tmp_path), policy=FAST)


def _events(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "ledger.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_refused_second_hop_records_the_entry_session_as_expiring(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with ScriptedServer().answer(200, OK).answer(403, _error("AccessDenied")) as sts:
        prepared = _prepare(tmp_path, sts.url, marker, entry=ENTRY)
        with pytest.raises(RefusedError, match="sts:TagSession"):
            run(prepared, stderr=io.StringIO())
    assert not marker.exists()
    events = _events(tmp_path)
    assert [e["event"] for e in events] == [
        "invocation.started",
        "credential.issued",
        "error",
        "credential.expiring",
        "invocation.finished",
    ]
    assert events[1]["purpose"] == "entry"
    assert events[3]["access_key_id"] == events[1]["access_key_id"]
    assert events[4]["exit_code"] == 77


def test_a_successful_run_returns_the_child_code_and_closes_the_ledger(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with ScriptedServer().answer(200, OK) as sts:
        code = run(_prepare(tmp_path, sts.url, marker), stderr=io.StringIO())
    assert code == 0
    assert marker.exists()
    assert _events(tmp_path)[-1]["event"] == "invocation.finished"

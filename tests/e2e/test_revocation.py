"""`--aws-revoke`, every exit path's cleanup, and `nhi-invoke revoke` after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.runs import (
    NHI,
    child_command,
    deny_policies,
    iam_client,
    ledger_events,
    run_nhi,
)

pytestmark = pytest.mark.e2e
# Writes its pid where the test can find it, then waits to be ended.
SLEEPER = (
    "import os, time, pathlib, sys; pathlib.Path(sys.argv[1]).write_text(str(os.getpid()));"
    " time.sleep(60)"
)


def _revoking(sandbox: dict[str, Any]) -> list[str]:
    return [
        "--aws-oidc-role-arn",
        sandbox["entry_role_arn"],
        "--aws-role-arn",
        sandbox["target_role_arn"],
        "--aws-revoke",
    ]


def _child_session(env: dict[str, str]) -> str:
    """The principal id (ROLEID:session) of the command's credential in the ledger."""
    (issued,) = [
        e
        for e in ledger_events(env)
        if e["event"] == "credential.issued" and e["purpose"] == "child"
    ]
    return str(issued["principal_id"])


def _wait_for(path: Path, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_the_deny_policy_names_exactly_this_session(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    first = github_env | {"RUNNER_TEMP": str(tmp_path / "a")}
    second = github_env | {"RUNNER_TEMP": str(tmp_path / "b")}
    for env, step in ((first, "first"), (second, "second")):
        Path(env["RUNNER_TEMP"]).mkdir()
        result = run_nhi(["run", "--step-id", step, *_revoking(sandbox), "--", "true"], env)
        assert result.code == 0, result.stderr
    denies = deny_policies(sandbox)
    for env in (first, second):
        session = _child_session(env)
        (revoked,) = [e for e in ledger_events(env) if e["event"] == "credential.revoked"]
        assert denies[revoked["policy_name"]] == session
        assert 0 <= revoked["exposure_seconds"] < 30
    assert _child_session(first) != _child_session(second)
    # Each policy denies one session; nothing denies the role as a whole.
    assert len(set(denies.values())) == len(denies)


def test_a_revoked_session_is_refused_once_iam_enforces(
    private_sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox = private_sandbox
    env = base_env | sandbox["environ"] | {"RUNNER_TEMP": str(tmp_path)}
    iam = iam_client(sandbox)
    iam.put_role_policy(
        RoleName="nhi-sandbox-deploy",
        PolicyName="list-buckets",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
                ],
            }
        ),
    )
    report = tmp_path / "report.json"
    result = run_nhi(
        ["run", "--step-id", "enforced", *_revoking(sandbox), "--", *child_command(report)], env
    )
    assert result.code == 0, result.stderr
    secret, token = json.loads(report.read_text())["secrets"]
    key_id = json.loads(report.read_text())["values"]["AWS_ACCESS_KEY_ID"]
    s3 = boto3.client(
        "s3",
        endpoint_url=sandbox["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )
    reset = f"{sandbox['aws_endpoint']}/moto-api/reset-auth"

    def enforce(on: bool) -> None:
        # moto reads the body raw: a form content type would hide it.
        request = urllib.request.Request(
            reset,
            data=b"0" if on else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request).close()

    # moto evaluates no policy conditions: with enforcement on, a Deny on the role denies all
    # of its sessions. This shows the deny took effect; its precision (one session) is
    # shown by the policy document test above.
    enforce(True)
    try:
        with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
            s3.list_buckets()
    finally:
        enforce(False)
    # Control: without the deny policy the same credentials are allowed.
    for name in deny_policies(sandbox):
        iam.delete_role_policy(RoleName="nhi-sandbox-deploy", PolicyName=name)
    enforce(True)
    try:
        s3.list_buckets()
    finally:
        enforce(False)


def test_thirty_parallel_revocations_on_one_role_lose_none(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    def one(index: int) -> int:
        done = subprocess.run(
            [NHI, "run", "--quiet", "--step-id", f"par-{index}", *_revoking(sandbox), "--", "true"],
            env=github_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return done.returncode

    with ThreadPoolExecutor(max_workers=30) as pool:
        codes = list(pool.map(one, range(30)))
    assert codes == [0] * 30
    events = ledger_events(github_env)  # one ledger, thirty writers
    sessions = {
        e["principal_id"]
        for e in events
        if e["event"] == "credential.issued" and e["purpose"] == "child"
    }
    revoked = {e["principal_id"] for e in events if e["event"] == "credential.revoked"}
    assert len(sessions) == 30
    assert revoked == sessions
    assert sessions <= set(deny_policies(sandbox).values())


def test_expired_deny_policies_are_pruned_on_the_next_revoke(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    stale = "nhi-revoked-20200101T000000Z-0123456789ab"
    iam_client(sandbox).put_role_policy(
        RoleName="nhi-sandbox-deploy",
        PolicyName=stale,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:userid": "AROAOLD:gone"}},
                    }
                ],
            }
        ),
    )
    result = run_nhi(["run", "--step-id", "prune", *_revoking(sandbox), "--", "true"], github_env)
    assert result.code == 0, result.stderr
    assert stale not in deny_policies(sandbox)
    (revoked,) = [e for e in ledger_events(github_env) if e["event"] == "credential.revoked"]
    assert stale in revoked["pruned"]


@pytest.mark.parametrize(
    ("child", "expected"),
    [(["true"], 0), (["sh", "-c", "exit 3"], 3), (["sh", "-c", "kill -KILL $$"], 137)],
    ids=["success", "failure", "child-killed"],
)
def test_every_command_ending_revokes_and_cleans_up(
    child: list[str],
    expected: int,
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = github_env | {"TMPDIR": str(scratch)}
    result = run_nhi(["run", "--step-id", "paths", *_revoking(sandbox), "--", *child], env)
    assert result.code == expected, result.stderr
    _assert_cleaned_up(env, sandbox, scratch, expected)


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"]
)
def test_a_signal_to_nhi_invoke_revokes_and_exits_128_plus_n(
    signum: int, github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    scratch, ready = tmp_path / "tmp", tmp_path / "ready"
    scratch.mkdir()
    env = github_env | {"TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [
            NHI,
            "run",
            "--step-id",
            "signal",
            *_revoking(sandbox),
            "--",
            sys.executable,
            "-c",
            SLEEPER,
            str(ready),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _wait_for(ready)
    proc.send_signal(signum)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signum
    _assert_cleaned_up(env, sandbox, scratch, 128 + signum)


def test_a_child_ignoring_the_signal_is_killed_after_the_grace_period(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    stubborn = (
        "import signal, time, pathlib, sys; signal.signal(signal.SIGTERM, "
        "signal.SIG_IGN); pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [
            NHI,
            "run",
            "--step-id",
            "stubborn",
            *_revoking(sandbox),
            "--",
            sys.executable,
            "-c",
            stubborn,
            str(ready),
        ],
        env=github_env | {"NHI_KILL_GRACE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for(ready)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 143
    exited = next(e for e in ledger_events(github_env) if e["event"] == "command.exited")
    assert exited["signal"] == signal.SIGKILL
    assert [e["event"] for e in ledger_events(github_env)][-1] == "invocation.finished"


def test_a_failure_half_way_revokes_what_was_minted(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    result = run_nhi(
        [
            "run",
            "--step-id",
            "half",
            *_revoking(sandbox),
            "--gcp-provider",
            sandbox["gcp_provider"],
            "--gcp-service-account",
            sandbox["gcp_denied_service_account"],
            "--",
            "true",
        ],
        github_env,
    )
    assert result.code == 77
    session = _child_session(github_env)
    assert session in deny_policies(sandbox).values()


def test_kill_9_then_nhi_invoke_revoke_denies_the_session(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [
            NHI,
            "run",
            "--step-id",
            "crash",
            *_revoking(sandbox),
            "--",
            sys.executable,
            "-c",
            SLEEPER,
            str(ready),
        ],
        env=github_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for(ready)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # The command, orphaned in the process group nhi-invoke made for it, runs on: end it.
    os.killpg(_pid(ready), signal.SIGKILL)
    session = _child_session(github_env)
    assert session not in deny_policies(sandbox).values()
    result = run_nhi(["revoke", "--json"], github_env)
    assert result.code == 0, result.stderr
    outcomes = json.loads(result.unmasked_stdout)["outcomes"]
    assert [o["action"] for o in outcomes if o["action"] == "revoked"] == ["revoked"]
    assert session in deny_policies(sandbox).values()
    events = ledger_events(github_env)
    revoked = [e for e in events if e["event"] == "credential.revoked"]
    assert revoked[0]["principal_id"] == session
    assert revoked[0]["role"] == "nhi-sandbox-deploy"  # as a run records it, role included
    assert revoked[0]["recovered"] is True
    assert events[-1]["event"] == "invocation.finished"
    assert events[-1]["recovered"] is True
    # Run again: nothing is left open, so nothing more happens.
    again = run_nhi(["revoke", "--json"], github_env)
    assert json.loads(again.unmasked_stdout)["outcomes"] == []


def _assert_cleaned_up(
    env: dict[str, str], sandbox: dict[str, Any], scratch: Path, exit_code: int
) -> None:
    events = ledger_events(env)
    names = [e["event"] for e in events]
    assert names[-1] == "invocation.finished"
    assert events[-1]["exit_code"] == exit_code
    assert names.count("credential.revoked") == 1  # the command's session
    assert names.count("credential.expiring") == 1  # the entry session, which cannot be
    assert _child_session(env) in deny_policies(sandbox).values()
    assert list(scratch.iterdir()) == []  # no temporary file left behind


def _pid(path: Path) -> int:
    """The pid the sleeper wrote (the file can exist a moment before its content does)."""
    end = time.monotonic() + 10
    while not (text := path.read_text()):
        assert time.monotonic() < end
        time.sleep(0.01)
    return int(text)

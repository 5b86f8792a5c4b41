"""Bad input: the documented exit code, one line on stderr, no traceback, the child never
started, and nothing minted."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.e2e.runs import ledger_events, run_nhi

pytestmark = pytest.mark.e2e
TEST_KEY = "not-a-secret-test-signing-key-of-32-bytes!"


def _token(tmp_path: Path, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:o/r:ref:x",
        "aud": "sts.amazonaws.com",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
    } | claims
    path = tmp_path / "token.jwt"
    path.write_text(jwt.encode(payload, TEST_KEY, algorithm="HS256"))
    return str(path)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Case:
    name: str
    exit_code: int
    needle: str  # a word the one-line message must contain
    options: Callable[[Path, dict[str, Any]], list[str]]
    env: Callable[[dict[str, str], Path], dict[str, str]] = lambda env, _tmp: env
    command: Callable[[Path], list[str]] | None = None  # default: touch a marker file


def _role(sandbox: dict[str, Any]) -> list[str]:
    return ["--aws-role-arn", sandbox["target_role_arn"]]


def _without_request_token(env: dict[str, str], _tmp: Path) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("ACTIONS_ID_TOKEN_REQUEST")}


def _fork_pull_request(env: dict[str, str], tmp: Path) -> dict[str, str]:
    event = tmp / "event.json"
    event.write_text(
        json.dumps(
            {"pull_request": {"head": {"repo": {"fork": True, "full_name": "someone/fork"}}}}
        )
    )
    return _without_request_token(env, tmp) | {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
    }


def _endpoint_down(env: dict[str, str], _tmp: Path) -> dict[str, str]:
    url = f"http://127.0.0.1:{_closed_port()}/_apis/idtoken?api-version=2.0"
    return env | {"ACTIONS_ID_TOKEN_REQUEST_URL": url}


CASES = [
    Case(
        "expired token",
        65,
        "expired",
        lambda tmp, sb: [*_role(sb), "--token-file", _token(tmp, exp=int(time.time()) - 3600)],
    ),
    Case(
        "token not yet valid",
        65,
        "nbf",
        lambda tmp, sb: [*_role(sb), "--token-file", _token(tmp, nbf=int(time.time()) + 3600)],
    ),
    Case(
        "wrong audience",
        65,
        "audience",
        lambda tmp, sb: [*_role(sb), "--token-file", _token(tmp, aud="api://other")],
    ),
    Case(
        "missing audience",
        65,
        "aud",
        lambda tmp, sb: [*_role(sb), "--token-file", _token(tmp, aud=None)],
    ),
    Case(
        "not a JWT",
        65,
        "not a JWT",
        lambda tmp, sb: [*_role(sb), "--token-file", _write(tmp, "hello-world")],
    ),
    Case(
        "unsigned token",
        65,
        "unsigned",
        lambda tmp, sb: [*_role(sb), "--token-file", _write(tmp, _unsigned())],
    ),
    Case(
        "missing id-token permission",
        78,
        "id-token: write",
        lambda tmp, sb: _role(sb),
        _without_request_token,
    ),
    Case("fork pull request", 78, "fork", lambda tmp, sb: _role(sb), _fork_pull_request),
    Case(
        "malformed role ARN",
        78,
        "not an IAM role ARN",
        lambda tmp, sb: ["--aws-role-arn", "arn:aws:iam::12345:role/x"],
    ),
    Case(
        "duration 100",
        78,
        "outside 900-43200",
        lambda tmp, sb: [*_role(sb), "--aws-duration", "100"],
    ),
    Case(
        "chained duration over an hour",
        78,
        "one hour",
        lambda tmp, sb: [
            *_role(sb),
            "--aws-oidc-role-arn",
            sb["entry_role_arn"],
            "--aws-duration",
            "7200",
        ],
    ),
    Case("unknown option", 2, "--no-such-option", lambda tmp, sb: [*_role(sb), "--no-such-option"]),
    Case("token endpoint down", 69, "after", lambda tmp, sb: _role(sb), _endpoint_down),
    Case(
        "token file missing",
        78,
        "token file",
        lambda tmp, sb: [*_role(sb), "--token-file", str(tmp / "absent.jwt")],
    ),
    Case(
        "reserved tag prefix",
        78,
        "reserved",
        lambda tmp, sb: [
            *_role(sb),
            "--aws-oidc-role-arn",
            sb["entry_role_arn"],
            "--tag",
            "aws:x=1",
        ],
    ),
    Case("tags without chaining", 78, "chained hop", lambda tmp, sb: [*_role(sb), "--tag", "a=b"]),
    Case(
        "step id with a control character",
        78,
        "control character",
        lambda tmp, sb: [*_role(sb), "--step-id", "dep\x1bloy"],
    ),
    Case(
        "bad base64 in the token",
        65,
        "base64url",
        lambda tmp, sb: [*_role(sb), "--token-file", _write(tmp, "!!!.e30.c2ln")],
    ),
    Case(
        "huge token",
        65,
        "20000",
        lambda tmp, sb: [*_role(sb), "--token-file", _write(tmp, "a" * 25_000)],
    ),
    Case(
        "list aud without ours",
        65,
        "audience",
        lambda tmp, sb: [*_role(sb), "--token-file", _token(tmp, aud=["a", "b"])],
    ),
    Case(
        "exp that is not a number",
        65,
        "not a number",
        lambda tmp, sb: [*_role(sb), "--token-file", _token(tmp, exp="tomorrow")],
    ),
    Case(
        "duration over 12 hours",
        78,
        "outside 900-43200",
        lambda tmp, sb: [*_role(sb), "--aws-duration", "43201"],
    ),
    Case(
        "bad region", 78, "not an AWS region", lambda tmp, sb: [*_role(sb), "--aws-region", "moon"]
    ),
    Case(
        "bad policy ARN",
        78,
        "not an IAM policy ARN",
        lambda tmp, sb: [*_role(sb), "--aws-policy-arn", "arn:aws:iam::aws:role/x"],
    ),
    Case(
        "eleven policy ARNs",
        78,
        "more than 10",
        lambda tmp, sb: [
            *_role(sb),
            *[a for i in range(11) for a in ("--aws-policy-arn", f"arn:aws:iam::aws:policy/p{i}")],
        ],
    ),
    Case(
        "session policy that is not JSON",
        78,
        "not JSON",
        lambda tmp, sb: [*_role(sb), "--aws-session-policy", _write(tmp, "{not json")],
    ),
    Case(
        "session policy file too large",
        78,
        "larger than",
        lambda tmp, sb: [*_role(sb), "--aws-session-policy", _write(tmp, " " * 70_000)],
    ),
    Case(
        "session policy over 2048 characters",
        78,
        "more than the 2048",
        lambda tmp, sb: [
            *_role(sb),
            "--aws-session-policy",
            _write(tmp, json.dumps({"Statement": [{"Sid": "x" * 2100}]})),
        ],
    ),
    Case(
        "unknown key in nhi-invoke.toml",
        78,
        "unknown key",
        lambda tmp, sb: [*_role(sb), "--config", _write(tmp, "[defaults]\nrole = 'x'\n")],
    ),
    Case(
        "bad TOML",
        78,
        "not valid TOML",
        lambda tmp, sb: [*_role(sb), "--config", _write(tmp, "[defaults\n")],
    ),
    Case(
        "config file that does not exist",
        78,
        "does not exist",
        lambda tmp, sb: [*_role(sb), "--config", str(tmp / "nope.toml")],
    ),
    Case(
        "step id of 10,000 characters",
        78,
        "characters long",
        lambda tmp, sb: [*_role(sb), "--step-id", "s" * 10_000],
    ),
    Case(
        "51 session tags",
        78,
        "more than the 50",
        lambda tmp, sb: [
            *_role(sb),
            "--aws-oidc-role-arn",
            sb["entry_role_arn"],
            *[a for i in range(45) for a in ("--tag", f"k{i}=v")],
        ],
    ),
    Case(
        "oversized tag value",
        78,
        "too long",
        lambda tmp, sb: [
            *_role(sb),
            "--aws-oidc-role-arn",
            sb["entry_role_arn"],
            "--tag",
            "k=" + "v" * 300,
        ],
    ),
    Case(
        "CI variables half set",
        78,
        "id-token: write",
        lambda tmp, sb: _role(sb),
        lambda env, _tmp: {k: v for k, v in env.items() if k != "ACTIONS_ID_TOKEN_REQUEST_TOKEN"},
    ),
    Case(
        "token variable not set",
        78,
        "MY_TOKEN",
        lambda tmp, sb: [*_role(sb), "--token-env", "MY_TOKEN"],
    ),
    Case(
        "token file and token variable",
        78,
        "only one of",
        lambda tmp, sb: [*_role(sb), "--token-env", "A", "--token-file", "b"],
    ),
    Case(
        "ledger key too short",
        78,
        "NHI_LEDGER_KEY",
        lambda tmp, sb: _role(sb),
        lambda env, _tmp: env | {"NHI_LEDGER_KEY": "short"},
    ),
    Case(
        "unwritable ledger",
        78,
        "cannot open the ledger",
        lambda tmp, sb: [*_role(sb), "--ledger", "/proc/nhi/ledger.jsonl"],
    ),
    Case(
        "kill grace of zero",
        78,
        "NHI_KILL_GRACE",
        lambda tmp, sb: _role(sb),
        lambda env, _tmp: env | {"NHI_KILL_GRACE": "0"},
    ),
    Case("timeout of zero", 78, "--timeout", lambda tmp, sb: [*_role(sb), "--timeout", "0"]),
    Case(
        "refresh margin as long as the session",
        78,
        "refresh-margin",
        lambda tmp, sb: [*_role(sb), "--serve", "--refresh-margin", "900"],
    ),
    Case("no cloud at all", 78, "no cloud identity", lambda tmp, sb: ["--step-id", "x"]),
    Case("no command", 2, "no command", lambda tmp, sb: _role(sb), command=lambda tmp: []),
    Case(
        "command not found",
        127,
        "not found",
        lambda tmp, sb: _role(sb),
        command=lambda tmp: ["no-such-command-xyz"],
    ),
    Case(
        "command not executable",
        126,
        "not executable",
        lambda tmp, sb: _role(sb),
        command=lambda tmp: [_write(tmp, "#!/bin/sh\necho hi\n")],
    ),
    Case(
        "nested invocation",
        78,
        "already running",
        lambda tmp, sb: _role(sb),
        lambda env, _tmp: env | {"NHI_INVOKE_ACTIVE": "abc"},
    ),
]


def _write(tmp: Path, text: str) -> str:
    path = tmp / "token.txt"
    path.write_text(text)
    return str(path)


def _unsigned() -> str:
    return jwt.encode(
        {"aud": "sts.amazonaws.com", "exp": int(time.time()) + 60}, None, algorithm="none"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_fails_cleanly_before_anything_is_minted(
    case: Case, github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    marker = tmp_path / "child-ran"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = case.env(github_env, tmp_path) | {"TMPDIR": str(scratch)}
    command = case.command(tmp_path) if case.command else ["touch", str(marker)]
    separator = ["--"] if command else []
    result = run_nhi(["run", *case.options(tmp_path, sandbox), *separator, *command], env)
    assert result.code == case.exit_code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nhi-invoke: error: ")
    assert case.needle in lines[0]
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert not [e for e in ledger_events(env) if e["event"] == "credential.issued"]
    assert list(scratch.iterdir()) == []  # no temporary file left behind


def test_the_catalogue_has_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("step_id", ["deploy web", "déploiement-β", "部署"])
def test_odd_but_printable_step_ids_are_sanitised_not_refused(
    step_id: str, github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    result = run_nhi(["run", "--step-id", step_id, *_role(sandbox), "--", "true"], github_env)
    assert result.code == 0, result.stderr
    (issued,) = [e for e in ledger_events(github_env) if e["event"] == "credential.issued"]
    assert re.fullmatch(r"[\w+=,.@-]{2,64}", issued["session_name"], re.ASCII)
    assert issued["session_name"].endswith(issued["invocation_id"])


def test_command_not_found_is_127_and_mints_nothing(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    result = run_nhi(["run", *_role(sandbox), "--", "no-such-command-xyz"], github_env)
    assert result.code == 127
    assert "not found" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert ledger_events(github_env) == []


def test_debug_shows_the_traceback(github_env: dict[str, str], sandbox: dict[str, Any]) -> None:
    result = run_nhi(["run", "--debug", "--aws-role-arn", "bad", "--", "true"], github_env)
    assert result.code == 78
    assert "Traceback" in result.stderr

"""An agent's task context (task id, agent, user) and the token sources agents use: how they
are resolved, where they go (session names, tags, plan), and what is refused."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.brokers.aws.tags import session_tags
from nhi_invoke.ci.detect import token_source
from nhi_invoke.ci.explicit import CallableTokenSource, CommandTokenSource, FileTokenSource
from nhi_invoke.ci.interface import LOCAL, CIContext
from nhi_invoke.errors import ConfigError, UnavailableError
from nhi_invoke.invocation.prepare import RunRequest, prepare
from nhi_invoke.naming import SESSION_NAME_PATTERN, session_name
from nhi_invoke.retry import RetryPolicy
from nhi_invoke.settings.resolve import resolve
from nhi_invoke.tasks.context import TaskContext
from tests.tokens import unsigned_token

ROLE = "arn:aws:iam::123456789012:role/deploy"
ENTRY = "arn:aws:iam::123456789012:role/entry"
FAST = RetryPolicy(attempts=2, base_seconds=0.01, cap_seconds=0.02, total_seconds=5)
GITHUB = CIContext(provider="github", run_id="42", run_attempt="1", step="build")


def _resolve(environ: dict[str, str] | None = None, **given: Any) -> Any:
    return resolve({"aws_role_arn": ROLE} | given, environ or {}, LOCAL, "/nonexistent")


def test_a_task_id_is_the_step_id_and_is_recorded_as_a_task() -> None:
    settings = _resolve(task_id="case-1042", agent="support-bot", on_behalf_of="alice@example.com")
    assert settings.step_id == "case-1042"
    assert settings.step_source == "flag --task-id"
    assert settings.task == TaskContext("case-1042", "support-bot", "alice@example.com")


def test_a_task_id_from_its_variable_beats_the_ci_step() -> None:
    settings = resolve({"aws_role_arn": ROLE}, {"NHI_TASK_ID": "case-7"}, GITHUB, "/nonexistent")
    assert (settings.step_id, settings.step_source) == ("case-7", "NHI_TASK_ID")
    assert settings.task == TaskContext("case-7")


def test_a_step_id_is_not_a_task_but_may_carry_an_agent() -> None:
    assert _resolve(step_id="deploy").task is None
    assert _resolve({"NHI_AGENT": "release-bot"}, step_id="deploy").task == TaskContext(
        None, "release-bot"
    )


@pytest.mark.parametrize(
    ("environ", "given"),
    [
        ({}, {"step_id": "deploy", "task_id": "case-1"}),
        ({"NHI_STEP_ID": "deploy", "NHI_TASK_ID": "case-1"}, {}),
    ],
)
def test_a_step_id_and_a_different_task_id_at_one_level_are_refused(
    environ: dict[str, str], given: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match="both name the step"):
        _resolve(environ, **given)


def test_a_task_id_flag_beats_a_step_id_variable() -> None:
    assert _resolve({"NHI_STEP_ID": "deploy"}, task_id="case-1").step_id == "case-1"


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"agent": " "}, "--agent is empty"),
        ({"on_behalf_of": "a\nb"}, "--on-behalf-of must be one printable line"),
        ({"agent": "x" * 201}, "at most 200 characters"),
        ({"task_id": "case\x07"}, "control character"),
    ],
)
def test_task_labels_are_one_printable_line(given: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        _resolve(**given)


@pytest.mark.parametrize(
    ("text", "option"),
    [("on-behalf-of", "on-behalf-of"), ("task-id", "task-id"), ("token-command", "token-command")],
)
def test_a_repository_config_may_not_name_a_task_user_or_token_command(
    tmp_path: Path, text: str, option: str
) -> None:
    (tmp_path / "nhi-invoke.toml").write_text(f'[defaults]\n{text} = "x"\n')
    with pytest.raises(ConfigError, match=f"{option} may not be set in the config file"):
        resolve({"aws_role_arn": ROLE}, {}, LOCAL, str(tmp_path))


def test_the_agent_may_come_from_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "nhi-invoke.toml").write_text('[defaults]\nagent = "support-bot"\n')
    settings = resolve({"aws_role_arn": ROLE}, {}, LOCAL, str(tmp_path))
    assert settings.task == TaskContext(None, "support-bot")


def test_a_token_command_is_split_as_a_shell_would_without_one() -> None:
    assert _resolve(token_command="print-token --for 'my agent'").token_command == (
        "print-token",
        "--for",
        "my agent",
    )
    assert _resolve(token_command=("print-token", "a b")).token_command == ("print-token", "a b")
    with pytest.raises(ConfigError, match="No closing quotation"):
        _resolve(token_command="print-token 'open")


def test_only_one_token_source_may_be_given(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="more than one token source"):
        _resolve(token_command="print-token", token_file=str(tmp_path / "t"))
    request = RunRequest({"aws_role_arn": ROLE, "token_env": "MY_TOKEN"}, ())
    with pytest.raises(ConfigError, match="token= and another token source"):
        prepare(request, {}, str(tmp_path), providers=[], token=lambda audience: "x")


def test_outside_ci_the_agent_takes_the_run_s_place_in_the_session_name() -> None:
    name = session_name("case-1042", LOCAL, "abcdefghijkl", "support-bot")
    assert name == "case-1042.support-bot.abcdefghijkl"
    # In a CI run, the run stays: it is what CloudTrail readers search for.
    assert session_name("case-1042", GITHUB, "abcdefghijkl", "support-bot") == (
        "case-1042.42-1.abcdefghijkl"
    )
    odd = session_name("case/1042 ü", LOCAL, "abcdefghijkl", "bot with spaces" * 9)
    assert SESSION_NAME_PATTERN.fullmatch(odd)


def test_the_agent_and_user_are_session_tags_a_policy_can_key_on() -> None:
    task = TaskContext("case-1042", "support-bot", "alice@example.com")
    tags = {t.key: t.value for t in session_tags("case-1042", LOCAL, "inv", task=task)}
    assert tags["nhi:step"] == "case-1042"
    assert tags["nhi:agent"] == "support-bot"
    assert tags["nhi:on-behalf-of"] == "alice@example.com"
    assert "nhi:agent" not in {t.key for t in session_tags("deploy", LOCAL, "inv")}


def test_tags_from_python_are_a_mapping() -> None:
    settings = _resolve(aws_oidc_role_arn=ENTRY, tags={"team": "support", "case": "1042"})
    (choice,) = settings.brokers
    assert choice.settings.tags == (("team", "support"), ("case", "1042"))
    with pytest.raises(ConfigError, match="tags must map strings to strings"):
        _resolve(aws_oidc_role_arn=ENTRY, tags={"team": 7})


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "print-token"
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_token_command_is_run_for_each_token_with_the_audience(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    program = _script(
        tmp_path,
        "import os, pathlib\n"
        f"pathlib.Path({str(calls)!r}).open('a').write(os.environ['NHI_TOKEN_AUDIENCE'] + "
        "' ' + str('NHI_LEDGER_KEY' in os.environ) + '\\n')\n"
        "print('  token-for-' + os.environ['NHI_TOKEN_AUDIENCE'] + '  ')",
    )
    environ = {"PATH": os.defpath, "NHI_LEDGER_KEY": "k" * 32}
    source = token_source(
        environ, None, token_file=None, token_env=None, policy=FAST, token_command=(program,)
    )
    assert isinstance(source, CommandTokenSource)
    assert source.description == "token command print-token"
    assert source.fetch("sts.amazonaws.com") == "token-for-sts.amazonaws.com"
    assert source.fetch("other") == "token-for-other"
    # Run again for each token, and never handed the ledger's key.
    assert calls.read_text().splitlines() == ["sts.amazonaws.com False", "other False"]


def test_a_failing_token_command_is_unavailable_and_a_missing_one_a_config_error(
    tmp_path: Path,
) -> None:
    failing = _script(tmp_path, "import sys; sys.exit('no token today')")
    source = CommandTokenSource((failing,), {"PATH": os.defpath}, FAST)
    with pytest.raises(UnavailableError, match="exited 1: no token today"):
        source.fetch("aud")
    missing = CommandTokenSource((str(tmp_path / "absent"),), {"PATH": os.defpath}, FAST)
    with pytest.raises(ConfigError, match="is not on PATH"):
        missing.fetch("aud")


def test_a_token_callable_is_called_with_the_audience_and_checked() -> None:
    asked: list[str] = []

    def supply(audience: str) -> str:
        asked.append(audience)
        return unsigned_token(now=time.time(), aud=audience)

    assert CallableTokenSource(supply).fetch("aud-1").count(".") == 2
    assert asked == ["aud-1"]
    assert CallableTokenSource(supply).description.endswith("supply")
    with pytest.raises(ConfigError, match="returned NoneType"):
        CallableTokenSource(lambda audience: None).fetch("aud")  # type: ignore[arg-type,return-value]

    def broken(audience: str) -> str:
        raise OSError("the token service is down: secret=abc")

    with pytest.raises(UnavailableError, match="the token callable raised OSError;") as raised:
        CallableTokenSource(broken).fetch("aud")
    assert "secret=abc" not in str(raised.value)


def test_a_token_file_is_read_again_for_each_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    source = FileTokenSource(str(path))
    path.write_text("first\n")
    assert source.fetch("aud") == "first"
    path.write_text("second\n")  # a projected token rotated by the kubelet
    assert source.fetch("aud") == "second"

"""CI detection (tri-state), context, and each CI's token protocol."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from nhi_invoke.ci.detect import detect, token_source
from nhi_invoke.ci.github import GitHubActions
from nhi_invoke.ci.gitlab import GitLabCI
from nhi_invoke.errors import ConfigError, UnavailableError
from nhi_invoke.retry import RetryPolicy
from tests.scripted_server import ScriptedServer
from tests.tokens import unsigned_token as _token

FAST = RetryPolicy(attempts=3, base_seconds=0.01, cap_seconds=0.02, total_seconds=5)


def test_no_ci_gives_the_local_context() -> None:
    context, provider = detect({"PATH": "/bin"})
    assert (context.provider, provider) == ("local", None)


@pytest.mark.parametrize(
    ("environ", "provider", "step", "run_id", "attempt"),
    [
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_ACTION": "deploy",
                "GITHUB_RUN_ID": "9",
                "GITHUB_RUN_ATTEMPT": "2",
            },
            "github",
            "deploy",
            "9",
            "2",
        ),
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_ACTION": "__run_2", "GITHUB_RUN_ID": "9"},
            "github",
            None,
            "9",
            None,
        ),
        (
            {"GITLAB_CI": "true", "CI_JOB_NAME": "build", "CI_PIPELINE_ID": "77"},
            "gitlab",
            "build",
            "77",
            None,
        ),
        (
            {"CIRCLECI": "true", "CIRCLE_JOB": "test", "CIRCLE_WORKFLOW_ID": "wf"},
            "circleci",
            "test",
            "wf",
            None,
        ),
        (
            {
                "BUILDKITE": "true",
                "BUILDKITE_STEP_KEY": "k",
                "BUILDKITE_BUILD_NUMBER": "5",
                "BUILDKITE_RETRY_COUNT": "1",
            },
            "buildkite",
            "k",
            "5",
            "2",
        ),
        (
            {"BITBUCKET_BUILD_NUMBER": "3", "BITBUCKET_STEP_UUID": "{u}"},
            "bitbucket",
            "{u}",
            "3",
            None,
        ),
    ],
)
def test_each_ci_is_detected_with_its_context(
    environ: dict[str, str], provider: str, step: str | None, run_id: str, attempt: str | None
) -> None:
    context, found = detect(environ)
    assert found is not None
    assert (context.provider, context.step, context.run_id, context.run_attempt) == (
        provider,
        step,
        run_id,
        attempt,
    )


def test_github_token_request_appends_the_audience_and_sends_the_bearer() -> None:
    with ScriptedServer().answer(200, json.dumps({"value": "tok"})) as server:
        environ = {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{server.url}/idtoken?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-secret",
        }
        assert GitHubActions().fetch_token(environ, "sts.amazonaws.com", FAST) == "tok"
    (request,) = server.requests
    assert request.path == "/idtoken?api-version=2.0&audience=sts.amazonaws.com"
    assert request.headers["Authorization"] == "bearer request-secret"


def test_github_token_request_retries_5xx_then_succeeds() -> None:
    with ScriptedServer().answer(503, "busy").answer(200, '{"value": "tok"}') as server:
        environ = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{server.url}/t?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x",
        }
        assert GitHubActions().fetch_token(environ, "a", FAST) == "tok"
    assert len(server.requests) == 2


def test_github_token_endpoint_always_failing_is_unavailable() -> None:
    with ScriptedServer().answer(500, "down") as server:
        environ = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{server.url}/t?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x",
        }
        with pytest.raises(UnavailableError, match="after 3 tries"):
            GitHubActions().fetch_token(environ, "a", FAST)


def test_github_refusal_is_a_configuration_error_at_once() -> None:
    with ScriptedServer().answer(403, "no") as server:
        environ = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{server.url}/t?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x",
        }
        with pytest.raises(ConfigError, match="HTTP 403"):
            GitHubActions().fetch_token(environ, "a", FAST)
    assert len(server.requests) == 1


def test_github_without_request_variables_names_the_permission() -> None:
    with pytest.raises(ConfigError) as caught:
        GitHubActions().fetch_token({"GITHUB_ACTIONS": "true"}, "a", FAST)
    assert "id-token: write" in caught.value.one_line()


def test_gitlab_picks_the_id_token_whose_audience_matches() -> None:
    aws, gcp = _token(aud="sts.amazonaws.com"), _token(aud="https://iam.googleapis.com/x")
    environ = {"GITLAB_CI": "true", "NHI_ID_TOKEN_AWS": aws, "NHI_ID_TOKEN_GCP": gcp}
    assert GitLabCI().fetch_token(environ, "https://iam.googleapis.com/x", FAST) == gcp
    assert GitLabCI().fetch_token(environ, "sts.amazonaws.com", FAST) == aws


def test_gitlab_reads_any_nhi_id_token_name_and_keeps_them_from_the_child() -> None:
    vault = _token(aud="https://bao.example:8200")
    environ = {"GITLAB_CI": "true", "NHI_ID_TOKEN_VAULT": vault, "NHI_ID_TOKEN": _token()}
    assert GitLabCI().fetch_token(environ, "https://bao.example:8200", FAST) == vault
    context = GitLabCI().context(environ)
    assert context is not None
    assert {"NHI_ID_TOKEN", "NHI_ID_TOKEN_VAULT"} <= set(context.token_variables)


def test_gitlab_without_id_tokens_says_how_to_declare_one() -> None:
    with pytest.raises(ConfigError) as caught:
        GitLabCI().fetch_token({"GITLAB_CI": "true"}, "sts.amazonaws.com", FAST)
    assert "id_tokens: {NHI_ID_TOKEN: {aud: sts.amazonaws.com}}" in caught.value.one_line()


def test_bitbucket_without_oidc_says_to_enable_it() -> None:
    _, provider = detect({"BITBUCKET_BUILD_NUMBER": "1"})
    assert provider is not None
    with pytest.raises(ConfigError) as caught:
        provider.fetch_token({"BITBUCKET_BUILD_NUMBER": "1"}, "a", FAST)
    assert "oidc: true" in caught.value.one_line()


def test_buildkite_asks_the_agent_for_the_audience(tmp_path: Path) -> None:
    agent = tmp_path / "buildkite-agent"
    agent.write_text('#!/bin/sh\necho "$@" > "$0.args"\necho agent-token\n')
    agent.chmod(stat.S_IRWXU)
    environ = {"BUILDKITE": "true", "PATH": f"{tmp_path}{os.pathsep}/bin:/usr/bin"}
    _, provider = detect(environ)
    assert provider is not None
    assert provider.fetch_token(environ, "sts.amazonaws.com", FAST) == "agent-token"
    assert (tmp_path / "buildkite-agent.args").read_text().split() == [
        "oidc",
        "request-token",
        "--audience",
        "sts.amazonaws.com",
    ]


def test_buildkite_without_the_agent_is_a_configuration_error() -> None:
    environ = {"BUILDKITE": "true", "PATH": "/nonexistent"}
    _, provider = detect(environ)
    assert provider is not None
    with pytest.raises(ConfigError, match="buildkite-agent"):
        provider.fetch_token(environ, "a", FAST)


def test_explicit_token_file_beats_the_ambient_ci(tmp_path: Path) -> None:
    path = tmp_path / "t"
    path.write_text("  file-token\n")
    _, provider = detect({"GITHUB_ACTIONS": "true"})
    source = token_source({}, provider, token_file=str(path), token_env=None, policy=FAST)
    assert source.fetch("a") == "file-token"


def test_token_env_names_a_missing_variable() -> None:
    source = token_source({}, None, token_file=None, token_env="MY_TOKEN", policy=FAST)
    with pytest.raises(ConfigError, match="MY_TOKEN"):
        source.fetch("a")


def test_github_masks_on_stdout_line_by_line(capsys: pytest.CaptureFixture[str]) -> None:
    reporting = GitHubActions().reporting({})
    reporting.mask("first\nsecond")
    reporting.mask("third", own_line=True)
    assert capsys.readouterr().out == (
        "::add-mask::first\n::add-mask::second\n\n::add-mask::third\n"
    )


def test_github_writes_the_summary_and_outputs_to_the_job_files(tmp_path: Path) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "output"
    environ = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
    reporting = GitHubActions().reporting(environ)
    reporting.write_summary("### one\n")
    reporting.write_summary("### two\n")
    reporting.set_outputs({"invocation-id": "abc", "ledger-path": "/l"})
    assert summary.read_text() == "### one\n### two\n"
    lines = outputs.read_text().splitlines()
    delimiter = lines[0].removeprefix("invocation-id<<")
    assert delimiter.startswith("ghadelimiter_")
    assert lines == [
        f"invocation-id<<{delimiter}",
        "abc",
        delimiter,
        f"ledger-path<<{delimiter}",
        "/l",
        delimiter,
    ]


@pytest.mark.parametrize(
    "outputs",
    [
        {"ok": "fine", "x": "a\nevil-output=pwned"},
        {"ok": "fine", "x": "a\rb"},
        {"ok": "fine", "bad=name": "v"},
        {"ok": "fine", "x<<EOF": "v"},
    ],
)
def test_github_refuses_outputs_that_are_not_one_line_and_writes_none(
    tmp_path: Path, outputs: dict[str, str]
) -> None:
    path = tmp_path / "output"
    reporting = GitHubActions().reporting({"GITHUB_OUTPUT": str(path)})
    with pytest.raises(ValueError, match=r"one printable line|not a step output name"):
        reporting.set_outputs(outputs)
    assert not path.exists()


def test_other_cis_report_nothing(tmp_path: Path) -> None:
    reporting = GitLabCI().reporting({"GITHUB_STEP_SUMMARY": str(tmp_path / "s")})
    reporting.write_summary("### x\n")
    reporting.set_outputs({"a": "b"})
    assert list(tmp_path.iterdir()) == []

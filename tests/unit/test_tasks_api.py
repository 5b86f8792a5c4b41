"""The Python API's lifecycle: a block issues its task's credentials and releases them however
it ends (return, exception, cancellation, close() from elsewhere, a failure while opening),
records why, and is used once. Against a real secrets service that revokes tokens."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import nhi_invoke
from nhi_invoke.errors import ConfigError, InvocationClosed, RefusedError
from nhi_invoke.tasks.lifetime import open_count
from tests.fake_broker.service import SecretsService
from tests.unit.tasks_fixtures import accessor, live, of, oidc_token


def test_a_block_hands_its_task_credentials_over_and_releases_them(
    task_settings: dict[str, Any],
    secrets_service: SecretsService,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="nhi_invoke")
    with nhi_invoke.invocation(task_id="case-1042", agent="support-bot", **task_settings) as inv:
        env = inv.env
        (principal,) = inv.principals.values()
        assert live(secrets_service) == {accessor(principal): True}
        assert env["NHI_INVOCATION_ID"] == inv.invocation_id
        assert env["NHI_STEP_ID"] == inv.task_id == "case-1042"
        assert env["FAKE_SECRET_TOKEN"].startswith("fake-secret.")
        env["FAKE_SECRET_TOKEN"] = "changed"  # a copy: the invocation's stays as it was
        assert inv.env["FAKE_SECRET_TOKEN"] != "changed"
        assert inv.expires_at is not None
    assert inv.closed
    assert live(secrets_service) == {accessor(principal): False}
    recorded = of(tmp_path, inv.invocation_id)
    assert [e["event"] for e in recorded] == [
        "invocation.started",
        "credential.issued",
        "command.exited",
        "credential.revoked",
        "invocation.finished",
    ]
    assert recorded[0]["task"] == {"id": "case-1042", "agent": "support-bot"}
    assert recorded[0]["command"] == "python"
    assert recorded[2]["ended_by"] == "return"
    assert recorded[2]["exit_code"] == recorded[4]["exit_code"] == 0
    # A library logs (to the `nhi_invoke` logger) and prints nothing.
    assert f"case-1042 runs as {principal}" in caplog.text
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    secret = inv.principals  # public facts stay readable; secrets do not
    assert secret == {"fake": principal}
    with pytest.raises(InvocationClosed, match="has ended"):
        _ = inv.env


def test_an_exception_releases_and_records_its_class_never_its_message(
    task_settings: dict[str, Any], secrets_service: SecretsService, tmp_path: Path
) -> None:
    with pytest.raises(KeyError), nhi_invoke.invocation(**task_settings) as inv:
        raise KeyError("customer 1042's card number")
    assert list(live(secrets_service).values()) == [False]
    exited = next(e for e in of(tmp_path, inv.invocation_id) if e["event"] == "command.exited")
    assert (exited["ended_by"], exited["exception"], exited["exit_code"]) == (
        "exception",
        "KeyError",
        1,
    )
    assert "card number" not in (tmp_path / "ledger.jsonl").read_text()


def test_a_cancelled_task_releases_its_credentials_and_records_why(
    task_settings: dict[str, Any], secrets_service: SecretsService, tmp_path: Path
) -> None:
    opened = asyncio.Event()
    found: list[nhi_invoke.Invocation] = []

    async def task() -> None:
        async with nhi_invoke.invocation(**task_settings) as inv:
            found.append(inv)
            opened.set()
            await asyncio.sleep(60)

    async def main() -> None:
        running = asyncio.create_task(task())
        await opened.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(main())
    assert list(live(secrets_service).values()) == [False]
    exited = next(e for e in of(tmp_path, found[0].invocation_id) if e["event"] == "command.exited")
    assert exited["ended_by"] == "cancelled"


def test_a_cancellation_while_opening_waits_for_the_credentials_and_releases_them(
    task_settings: dict[str, Any], secrets_service: SecretsService, tmp_path: Path
) -> None:
    asked = threading.Event()

    def slow_token(audience: str) -> str:
        asked.set()
        time.sleep(0.3)  # the task is cancelled while its token is fetched
        return oidc_token(audience)

    inv = nhi_invoke.invocation(**task_settings | {"token": slow_token})

    async def task() -> None:
        async with inv:
            raise AssertionError("the block must not run")

    async def main() -> None:
        running = asyncio.create_task(task())
        await asyncio.to_thread(asked.wait)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(main())
    # It was issued after the cancellation arrived, and released before it was delivered.
    assert list(live(secrets_service).values()) == [False]
    names = [e["event"] for e in of(tmp_path, inv.invocation_id)]
    assert names[1:] == [
        "credential.issued",
        "command.exited",
        "credential.revoked",
        "invocation.finished",
    ]
    assert of(tmp_path, inv.invocation_id)[2]["ended_by"] == "cancelled"


def test_close_from_another_thread_revokes_a_task_mid_flight(
    task_settings: dict[str, Any], secrets_service: SecretsService, tmp_path: Path
) -> None:
    inside = threading.Event()
    revoked = threading.Event()
    seen: list[BaseException] = []
    inv = nhi_invoke.invocation(**task_settings)

    def task() -> None:
        with inv:
            inside.set()
            revoked.wait(10)
            try:
                _ = inv.env
            except InvocationClosed as closed:
                seen.append(closed)

    worker = threading.Thread(target=task)
    worker.start()
    inside.wait(10)
    inv.close()  # the orchestrator's decision: this task's credentials end now
    assert list(live(secrets_service).values()) == [False]
    revoked.set()
    worker.join(10)
    assert len(seen) == 1
    names = [(e["event"], e.get("ended_by")) for e in of(tmp_path, inv.invocation_id)]
    # The block's own end found it closed and recorded nothing more.
    assert names == [
        ("invocation.started", None),
        ("credential.issued", None),
        ("command.exited", "closed"),
        ("credential.revoked", None),
        ("invocation.finished", None),
    ]
    inv.close()  # harmless again
    assert len(of(tmp_path, inv.invocation_id)) == 5
    assert of(tmp_path, inv.invocation_id)[2]["exit_code"] == 0


def test_a_keyboard_interrupt_in_the_block_releases_and_is_recorded(
    task_settings: dict[str, Any], secrets_service: SecretsService, tmp_path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt), nhi_invoke.invocation(**task_settings) as inv:
        raise KeyboardInterrupt
    assert list(live(secrets_service).values()) == [False]
    exited = of(tmp_path, inv.invocation_id)[2]
    assert (exited["ended_by"], exited["exception"]) == ("interrupted", "KeyboardInterrupt")


def test_an_invocation_is_opened_once_and_is_not_open_before_its_block(
    task_settings: dict[str, Any],
) -> None:
    inv = nhi_invoke.invocation(**task_settings)
    with pytest.raises(RuntimeError, match="not open yet"):
        _ = inv.env
    inv.close()  # closing one never opened does nothing
    with pytest.raises(RuntimeError, match="already used"), inv:
        pass
    again = nhi_invoke.invocation(**task_settings)
    with again:
        pass
    with pytest.raises(RuntimeError, match="already used"), again:
        pass


def test_a_refused_exchange_raises_and_leaves_nothing_open(
    task_settings: dict[str, Any], secrets_service: SecretsService, tmp_path: Path
) -> None:
    secrets_service.refuse = True
    inv = nhi_invoke.invocation(**task_settings)
    with pytest.raises(RefusedError, match="may not have a token"), inv:
        pass
    assert inv.closed
    assert open_count() == 0
    names = [e["event"] for e in of(tmp_path, inv.invocation_id)]
    assert names == ["invocation.started", "error", "invocation.finished"]


def test_invalid_settings_fail_when_the_invocation_is_made(
    task_settings: dict[str, Any],
) -> None:
    with pytest.raises(ConfigError, match="no cloud identity to issue"):
        nhi_invoke.invocation(token=oidc_token, environ=task_settings["environ"])
    with pytest.raises(ConfigError, match="both name the step"):
        nhi_invoke.invocation(step_id="a", task_id="b", **task_settings)


def test_no_token_source_at_all_fails_when_the_invocation_is_made(
    task_settings: dict[str, Any],
) -> None:
    without = {k: v for k, v in task_settings.items() if k != "token"}
    with pytest.raises(ConfigError, match=r"no OIDC token available.*token_command= or token="):
        nhi_invoke.invocation(**without)


def test_unknown_and_process_only_keywords_are_type_errors(task_settings: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="'fake_ur'; did you mean fake_url="):
        nhi_invoke.invocation(fake_ur="x", **task_settings)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="serve= is not available in the Python API"):
        nhi_invoke.invocation(serve=True, **task_settings)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="token= takes a callable"):
        nhi_invoke.invocation(**task_settings | {"token": "eyJhbGciOi"})


def test_an_invocation_inside_an_invocation_s_tool_process_is_refused(
    task_settings: dict[str, Any],
) -> None:
    with nhi_invoke.invocation(**task_settings) as inv:
        nested = nhi_invoke.invocation(**task_settings | {"environ": inv.env})
        with pytest.raises(ConfigError, match="already running in this environment"), nested:
            pass


def test_a_subprocess_tool_gets_its_task_credentials_through_env(
    task_settings: dict[str, Any], secrets_service: SecretsService
) -> None:
    environ = task_settings["environ"] | {"NHI_LEDGER_KEY": "k" * 32}
    tool = (
        "import json, os, urllib.request as u\n"
        "r = u.Request(os.environ['FAKE_SECRETS_URL'] + '/whoami', headers={'Authorization': "
        "'Bearer ' + os.environ['FAKE_SECRET_TOKEN']})\n"
        "print(json.dumps([json.load(u.urlopen(r))['accessor'], "
        "'NHI_LEDGER_KEY' in os.environ, os.environ['NHI_INVOCATION_ID']]))"
    )
    with nhi_invoke.invocation(**task_settings | {"environ": environ}) as inv:
        done = subprocess.run(
            [sys.executable, "-c", tool], env=inv.env, capture_output=True, text=True, check=True
        )
        (principal,) = inv.principals.values()
    assert done.stdout.strip() == f'["{accessor(principal)}", false, "{inv.invocation_id}"]'


def test_on_github_actions_every_secret_is_masked_on_a_line_of_its_own_and_summarised(
    task_settings: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.md"
    github = task_settings["environ"] | {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_RUN_ID": "7",
    }
    print("a line the host is still writing", end="", flush=True)
    with nhi_invoke.invocation(task_id="case-1", **task_settings | {"environ": github}) as inv:
        token = inv.env["FAKE_SECRET_TOKEN"]
    out = capfd.readouterr().out
    # The host was mid-line: the mask command starts a line of its own, or the runner misses it.
    assert f"\n::add-mask::{token}\n" in out
    assert f"`case-1` (invocation `{inv.invocation_id}`" in summary.read_text()

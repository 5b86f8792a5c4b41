"""The Python API in a long-lived process: many invocations at once (threads and asyncio) with
nothing shared, `current_invocation()` through contextvars, `@with_invocation`, the release of
what is still open at interpreter exit, and no signal handler or prctl on the host."""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import nhi_invoke
from nhi_invoke.tasks import completion
from tests.fake_broker.service import SecretsService
from tests.unit.tasks_fixtures import accessor, events, live, of

PR_GET_DUMPABLE = 3
ROOT = Path(__file__).resolve().parents[2]


def test_concurrent_tasks_in_threads_and_asyncio_each_hold_their_own_credentials(
    task_settings: dict[str, Any], secrets_service: SecretsService
) -> None:
    count = 8
    opened = threading.Semaphore(0)
    first_revoked = threading.Event()
    held: dict[str, str] = {}  # task -> its accessor
    seen: dict[str, bool] = {}  # task -> whether its token still worked after the revocation
    victim: list[nhi_invoke.Invocation] = []

    def check(name: str, inv: nhi_invoke.Invocation) -> None:
        (principal,) = inv.principals.values()
        held[name] = accessor(principal)
        if name == "thread-0":
            victim.append(inv)

    def in_thread(index: int) -> None:
        name = f"thread-{index}"
        with nhi_invoke.invocation(task_id=name, **task_settings) as inv:
            check(name, inv)
            opened.release()
            first_revoked.wait(30)
            seen[name] = live(secrets_service)[held[name]]

    async def in_task(index: int) -> None:
        name = f"async-{index}"
        async with nhi_invoke.invocation(task_id=name, **task_settings) as inv:
            check(name, inv)
            opened.release()
            while not first_revoked.is_set():
                await asyncio.sleep(0.01)
            seen[name] = live(secrets_service)[held[name]]

    async def tasks() -> None:
        await asyncio.gather(*(in_task(i) for i in range(count)))

    workers = [threading.Thread(target=in_thread, args=(i,)) for i in range(count)]
    workers.append(threading.Thread(target=asyncio.run, args=(tasks(),)))
    for worker in workers:
        worker.start()
    for _ in range(2 * count):
        assert opened.acquire(timeout=60)
    assert len(set(held.values())) == 2 * count  # one credential each
    assert all(live(secrets_service).values())
    victim[0].close()  # one task revoked: no other is touched
    first_revoked.set()
    for worker in workers:
        worker.join(30)
    assert seen.pop("thread-0") is False
    assert set(seen.values()) == {True}
    assert not any(live(secrets_service).values())


def test_current_invocation_is_the_innermost_in_this_context(
    task_settings: dict[str, Any],
) -> None:
    with pytest.raises(LookupError, match="no nhi-invoke invocation is open"):
        nhi_invoke.current_invocation()
    with nhi_invoke.invocation(task_id="case-1", **task_settings) as outer:
        assert nhi_invoke.current_invocation() is outer
        with nhi_invoke.invocation(**task_settings) as inner:
            assert nhi_invoke.current_invocation() is inner
        assert nhi_invoke.current_invocation() is outer
        found: list[object] = []
        plain = threading.Thread(target=lambda: found.append(_current_or_none()))
        plain.start()
        plain.join()
        copied = contextvars.copy_context()
        carried = threading.Thread(
            target=copied.run, args=(lambda: found.append(_current_or_none()),)
        )
        carried.start()
        carried.join()
        assert found == [None, outer]  # a thread sees it only when given the context
    with pytest.raises(LookupError):
        nhi_invoke.current_invocation()


def _current_or_none() -> nhi_invoke.Invocation | None:
    try:
        return nhi_invoke.current_invocation()
    except LookupError:
        return None


def test_asyncio_tasks_started_in_a_block_find_its_invocation(
    task_settings: dict[str, Any],
) -> None:
    async def helper() -> str:
        return nhi_invoke.current_invocation().invocation_id

    async def task(name: str) -> tuple[str, list[str]]:
        async with nhi_invoke.invocation(task_id=name, **task_settings) as inv:
            found = await asyncio.gather(helper(), asyncio.create_task(helper()))
            return inv.invocation_id, list(found)

    async def main() -> list[tuple[str, list[str]]]:
        return list(await asyncio.gather(task("a"), task("b")))

    for invocation_id, found in asyncio.run(main()):
        assert found == [invocation_id, invocation_id]


def test_with_invocation_gives_each_call_its_own_invocation_of_the_same_task(
    task_settings: dict[str, Any], tmp_path: Path
) -> None:
    @nhi_invoke.with_invocation(**task_settings)
    def lookup(case: str) -> tuple[str, str]:
        inv = nhi_invoke.current_invocation()
        return inv.invocation_id, inv.env["FAKE_SECRET_TOKEN"]

    @nhi_invoke.with_invocation(**task_settings)
    async def refund(case: str) -> str:
        return nhi_invoke.current_invocation().invocation_id

    assert lookup.__name__ == "lookup"
    with nhi_invoke.invocation(task_id="case-9", agent="support-bot", **task_settings) as task:
        first, first_token = lookup("9")
        second, second_token = lookup("9")
        third = asyncio.run(refund("9"))
        assert nhi_invoke.current_invocation() is task
    assert len({task.invocation_id, first, second, third}) == 4
    assert first_token != second_token
    for invocation_id, name in ((first, "lookup"), (third, "refund")):
        started = of(tmp_path, invocation_id)[0]
        assert started["step_id"] == "case-9"  # the tool call serves the task it is part of
        assert started["task"] == {"id": "case-9", "agent": "support-bot"}
        assert started["command"].endswith(name)
        assert of(tmp_path, invocation_id)[-1]["event"] == "invocation.finished"


def test_a_decorated_call_that_raises_releases_its_invocation(
    task_settings: dict[str, Any], secrets_service: SecretsService, tmp_path: Path
) -> None:
    @nhi_invoke.with_invocation(**task_settings)
    def risky() -> None:
        raise PermissionError("refused")

    with pytest.raises(PermissionError):
        risky()
    assert list(live(secrets_service).values()) == [False]
    exited = [e for e in events(tmp_path) if e["event"] == "command.exited"]
    assert exited[0]["exception"] == "PermissionError"


def test_the_api_installs_no_signal_handler_and_leaves_the_process_dumpable(
    task_settings: dict[str, Any],
) -> None:
    catchable = [s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP)]
    libc = ctypes.CDLL(None, use_errno=True)
    before = ({s: signal.getsignal(s) for s in catchable}, libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
    with nhi_invoke.invocation(**task_settings):
        during = {s: signal.getsignal(s) for s in catchable}
    after = ({s: signal.getsignal(s) for s in catchable}, libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
    assert during == before[0]
    assert after == before


def test_an_interrupt_waits_for_the_work_in_hand_then_is_raised() -> None:
    main = os.getpid()

    def work() -> str:
        os.kill(main, signal.SIGINT)  # Ctrl-C while a credential is being issued
        time.sleep(0.2)
        return "recorded"

    result, interrupted = completion.blocking(work)
    assert result == "recorded"
    assert isinstance(interrupted, KeyboardInterrupt)


AT_EXIT = """
import sys, threading, time
sys.path.insert(0, {root!r})
import nhi_invoke
from tests.unit.tasks_fixtures import oidc_token

environ = {environ!r}
opened = threading.Event()

def task():
    with nhi_invoke.invocation(task_id="abandoned", fake_url={url!r}, token=oidc_token,
                               environ=environ):
        opened.set()
        time.sleep(60)  # a daemon thread still inside its block when the program ends

threading.Thread(target=task, daemon=True).start()
opened.wait(30)
"""


def test_invocations_still_open_at_interpreter_exit_are_released(
    task_environ: dict[str, str], secrets_service: SecretsService, tmp_path: Path
) -> None:
    script = AT_EXIT.format(root=str(ROOT), environ=task_environ, url=secrets_service.url)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert list(live(secrets_service).values()) == [False]
    recorded = [e for e in events(tmp_path) if e["step_id"] == "abandoned"]
    exited = next(e for e in recorded if e["event"] == "command.exited")
    assert exited["ended_by"] == "interpreter-exit"
    assert recorded[-1]["event"] == "invocation.finished"


def test_import_nhi_invoke_loads_the_api_only_when_it_is_used() -> None:
    probe = (
        "import inspect, json, sys, nhi_invoke\n"
        "loaded = lambda: 'nhi_invoke.tasks.api' in sys.modules\n"
        "found = [loaded()]\n"
        "nhi_invoke.invocation, nhi_invoke.with_invocation\n"
        "found.append(loaded())\n"
        "found.append(list(inspect.signature(nhi_invoke.invocation).parameters))\n"
        "import nhi_invoke.invocation.flow as flow\n"
        "found.append(flow.__name__)\n"
        "print(json.dumps(found))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    # Every form of import still reaches the package that shares the API's name.
    assert json.loads(done.stdout) == [
        False,
        True,
        ["token", "environ", "settings"],
        "nhi_invoke.invocation.flow",
    ]

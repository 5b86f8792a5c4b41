"""Run an invocation's blocking work (issuing, releasing) to completion, whatever the caller
receives meanwhile: a KeyboardInterrupt in a `with` block, a cancellation in an `async with`.

The work runs on a thread of its own, which ends with it: nothing is pooled, so a process that
runs a thousand tasks keeps no thread for them. The caller's interrupt or cancellation is
delivered once the work is done, so a credential is never minted without being recorded, nor
left half released. No signal handler is installed: the host process is not ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Outcome(Generic[T]):
    """What the work returned or raised."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None


def _thread(work: Callable[[], T], done: Callable[[_Outcome[T]], None]) -> threading.Thread:
    outcome: _Outcome[T] = _Outcome()

    def run() -> None:
        try:
            outcome.value = work()
        except BaseException as error:  # handed to the caller, who re-raises it
            outcome.error = error
        done(outcome)

    return threading.Thread(target=run, name="nhi-invoke", daemon=True)


def _result(outcome: _Outcome[T]) -> T:
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]  # set when there is no error


def blocking(work: Callable[[], T]) -> tuple[T, KeyboardInterrupt | None]:
    """`work()`'s result, and a KeyboardInterrupt that arrived while it ran (for the caller to
    raise once it has put things in order). `work`'s own exception is raised."""
    finished: list[_Outcome[T]] = []
    done = threading.Event()

    def hand_over(outcome: _Outcome[T]) -> None:
        finished.append(outcome)
        done.set()

    thread = _thread(work, hand_over)
    interrupted: KeyboardInterrupt | None = None
    try:
        thread.start()
    except KeyboardInterrupt as interrupt:  # it may land while the thread is being started
        if thread.ident is None:
            raise  # it never started: nothing is under way
        interrupted = interrupt
    while thread.is_alive() or not done.is_set():
        try:
            # The outcome first; then the thread's last instant, so that none is left behind.
            if not done.is_set():
                done.wait()
            else:
                thread.join()
        except KeyboardInterrupt as interrupt:
            interrupted = interrupted or interrupt
    return _result(finished[0]), interrupted


async def awaited(work: Callable[[], T]) -> tuple[T, bool]:
    """`work()`'s result, and whether the awaiting task was cancelled while it ran (for the
    caller to raise CancelledError once it has put things in order)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_Outcome[T]] = loop.create_future()

    def done(outcome: _Outcome[T]) -> None:
        def settle() -> None:
            if not future.done():
                future.set_result(outcome)

        # RuntimeError: the loop was closed under us, and nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)

    thread = _thread(work, done)
    thread.start()
    cancelled = False
    while True:
        try:
            outcome = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            cancelled = True
    # The thread has handed over its outcome and is returning: wait the last instant for it,
    # so that none is left behind.
    thread.join()
    return _result(outcome), cancelled

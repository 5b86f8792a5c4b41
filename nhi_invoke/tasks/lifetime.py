"""One task's invocation inside a process that outlives it: opened once, closed once, and
released whatever ends it — the block's end, an exception, a cancellation, `close()` from
another thread, or the interpreter's exit.

The core `Invocation` (invocation/flow.py) issues and releases, exactly as for `run`; this adds
what a long-lived host needs: a lock (a task may be closed from another thread while it is
still being opened), why it ended (in the ledger's `command.exited`), and a release at
interpreter exit of whatever is still open. No signal handler, no prctl: the process is the
host's, not ours. The registry of open invocations is the only state shared between them, and
it holds no credential.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from enum import Enum

from nhi_invoke.brokers.grants import CHILD, Grant
from nhi_invoke.errors import ConfigError, InvocationClosed, NhiError
from nhi_invoke.invocation import child
from nhi_invoke.invocation.flow import EXIT_INTERNAL
from nhi_invoke.invocation.flow import Invocation as CoreInvocation
from nhi_invoke.invocation.prepare import Prepared

# How a block ended, as `command.exited` records it (`ended_by`).
RETURNED = "return"
EXCEPTION = "exception"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"
CLOSED = "closed"
INTERPRETER_EXIT = "interpreter-exit"
_NORMAL = (RETURNED, CLOSED)


class State(Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class TaskLifetime:
    """Opens one invocation and closes it exactly once."""

    def __init__(self, prepared: Prepared, command: str, report: Callable[[str], None]) -> None:
        self.prepared = prepared
        self.command = command
        self._report = report
        self._lock = threading.Lock()
        self._core: CoreInvocation | None = None
        self._env: dict[str, str] | None = None
        self._grants: tuple[Grant, ...] = ()
        self.state = State.NEW

    def open(self) -> None:
        """Record the start and issue every grant; on any failure, release what was issued
        and raise."""
        with self._lock:
            if self.state is not State.NEW:
                raise RuntimeError(
                    "this invocation was already used; call nhi_invoke.invocation() again "
                    "for a new one"
                )
            self.state = State.CLOSED  # until it is open: a failure below leaves it closed
            active = self.prepared.environ.get(child.ACTIVE_VARIABLE)
            if active is not None:
                raise ConfigError(
                    f"nhi-invoke is already running in this environment "
                    f"(NHI_INVOKE_ACTIVE={active[:20]})",
                    "open invocations in the process that runs the tasks, not in a tool it "
                    "started with inv.env",
                )
            core = CoreInvocation(self.prepared, report=self._report)
            core.journal.shared_output = True  # the host's own code prints at any moment
            core.begin(self.command)  # a ledger that cannot be written fails here, empty
            self._core = core
            _track(self)
            try:
                self._env = core.open()
                # The task's code runs from here on, as `run`'s command would: renewals start
                # (a broker's renewable token), and a failing ledger no longer stops cleanup.
                core.command_started()
            except BaseException as error:
                self._fail(core, error)
                raise
            self._grants = tuple(g for g in core.journal.grants if g.purpose == CHILD)
            self.state = State.OPEN

    def _fail(self, core: CoreInvocation, error: BaseException) -> None:
        if isinstance(error, NhiError):
            core.failed(error)
            code = error.exit_code
        else:
            code = 130 if isinstance(error, KeyboardInterrupt) else EXIT_INTERNAL
        _untrack(self)
        core.close(code)
        if core.unrecorded is not None:  # said, never raised: `error` is the one to raise
            self._report(f"error: {core.unrecorded.one_line()}")

    def finish(self, ended_by: str, exception: str | None = None) -> None:
        """Release everything, recording how the block ended; harmless when already closed.

        Every credential is ended even when the ledger fails; the lines it lost are then
        raised (RecordError, exit code 74) when the block ended normally, as `run` exits 74
        when the command succeeded, and otherwise reported, never hiding the block's own end.
        """
        with self._lock:
            core = self._core
            if self.state is not State.OPEN or core is None:
                self.state = State.CLOSED
                return
            self.state = State.CLOSED
            _untrack(self)
            code = 0 if ended_by in _NORMAL else 1
            core.command_exited(code, None, ended_by=ended_by, exception=exception)
            core.close(code)
            lost = core.unrecorded
        if lost is None:
            return
        if ended_by in _NORMAL:
            raise lost
        self._report(f"error: {lost.one_line()}")

    def _opened(self) -> None:
        if self.state is State.NEW:
            raise RuntimeError(
                "the invocation is not open yet: use it as `with nhi_invoke.invocation(...) "
                "as inv:` (or `async with`)"
            )
        if self.state is State.CLOSED:
            raise InvocationClosed(
                f"invocation {self.prepared.plan.invocation_id} has ended: its credentials "
                "were released",
                "open a new invocation for more work",
            )

    @property
    def env(self) -> dict[str, str]:
        self._opened()
        assert self._env is not None
        return dict(self._env)

    @property
    def grants(self) -> tuple[Grant, ...]:
        """The credentials the task was given (not the entry hops nhi-invoke keeps to itself):
        their public facts stay readable after the close; their secrets do not."""
        if self.state is State.NEW:
            self._opened()
        return self._grants

    def secret_grants(self) -> tuple[Grant, ...]:
        """The same grants, for their secrets: only while the invocation is open."""
        self._opened()
        return self._grants


_registry_lock = threading.Lock()
_open: dict[int, TaskLifetime] = {}
_at_exit: list[bool] = []


def _track(lifetime: TaskLifetime) -> None:
    with _registry_lock:
        if not _at_exit:
            atexit.register(close_all_at_exit)
            _at_exit.append(True)
        _open[id(lifetime)] = lifetime


def _untrack(lifetime: TaskLifetime) -> None:
    with _registry_lock:
        _open.pop(id(lifetime), None)


def open_count() -> int:
    """How many invocations of this process are open (for tests and diagnostics)."""
    with _registry_lock:
        return len(_open)


def close_all_at_exit() -> None:
    """Release every invocation still open when the interpreter exits (a thread still inside
    a block, a task never awaited to its end). Runs on the main thread; starts no thread."""
    with _registry_lock:
        still_open = list(_open.values())
    for lifetime in still_open:
        lifetime.finish(INTERPRETER_EXIT)

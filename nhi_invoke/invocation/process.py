"""The process layer of `nhi-invoke run`: open the invocation, run the command under signal
handling, close; find the command, start it, relay signals to it, return its exit code.

The only place where the invocation meets a process: signals are handled from before the
first credential is issued until the last is released, and the command's exit code (128+N
when signal N killed it) is what nhi-invoke exits with. The child runs in its own process
group. A signal sent to nhi-invoke (or to its group) is relayed exactly once; a terminal's
Ctrl-C reaches the child directly, because the child's group is made the terminal's
foreground group, and never reaches it twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, TextIO

from nhi_invoke.errors import (
    CommandNotExecutable,
    CommandNotFound,
    ConfigError,
    Interrupted,
    NhiError,
)
from nhi_invoke.invocation import child
from nhi_invoke.invocation.flow import EXIT_INTERNAL, Invocation

if TYPE_CHECKING:
    from nhi_invoke.invocation.prepare import Prepared

RELAYED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
KILL_GRACE_SECONDS = 5.0


class Phase(Enum):
    MINTING = "minting"  # a signal aborts the invocation (cleanup still runs)
    SPAWNING = "spawning"  # a signal is held until the child exists, then relayed
    RUNNING = "running"  # a signal is relayed to the child
    CLEANUP = "cleanup"  # a signal is noted; cleanup is never cut short


class SignalGuard:
    """nhi-invoke's signal handling for one whole invocation, minting to cleanup."""

    def __init__(self, grace_seconds: float = KILL_GRACE_SECONDS) -> None:
        self.grace_seconds = grace_seconds
        self.received: int | None = None
        self.phase = Phase.MINTING
        self._pending: list[int] = []
        self._child: subprocess.Popen[bytes] | None = None
        self._killer: threading.Timer | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> SignalGuard:
        for signum in RELAYED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._killer is not None:
            self._killer.cancel()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if self.phase is Phase.MINTING:
            if first:
                raise Interrupted(signum)
        elif self.phase is Phase.SPAWNING:
            self._pending.append(signum)
        elif self.phase is Phase.RUNNING:
            self._relay(signum)

    def _relay(self, signum: int) -> None:
        child = self._child
        if child is None or child.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signum)
        if self._killer is None:
            # The runner escalates to SIGKILL on its own clock; ours must come first so
            # that cleanup still happens.
            self._killer = threading.Timer(self.grace_seconds, self._kill_child)
            self._killer.daemon = True
            self._killer.start()

    def _kill_child(self) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)

    def child_started(self, child: subprocess.Popen[bytes]) -> None:
        self._child = child
        self.phase = Phase.RUNNING
        for signum in self._pending:
            self._relay(signum)
        self._pending.clear()

    def child_ended(self) -> None:
        self.phase = Phase.CLEANUP
        if self._killer is not None:
            self._killer.cancel()


def resolve_command(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The command with its program found on the child's PATH; 127/126 when it cannot run."""
    if not argv:
        raise CommandNotFound("no command given", "put the command after '--'")
    program = argv[0]
    found: str | None = program
    if os.sep in program:
        if not os.path.exists(program):
            raise CommandNotFound(
                f"the command {program!r} does not exist", "check the path to the command"
            )
    else:
        found = shutil.which(program, path=environ.get("PATH", os.defpath))
        if found is None:
            raise CommandNotFound(
                f"the command {program!r} was not found on PATH",
                "install it, or give its full path",
            )
    path = str(found)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise CommandNotExecutable(
            f"the command {program!r} is not executable",
            f"chmod +x {path}, or run it through its interpreter",
        )
    return [path, *argv[1:]]


def exit_status(returncode: int) -> int:
    """A child's exit code as a shell reports it: 128+N when signal N killed it."""
    return 128 - returncode if returncode < 0 else returncode


def _foreground_terminal() -> int | None:
    """stdin's descriptor when it is a terminal whose foreground group is ours."""
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        return None
    return None


def _hand_terminal(fd: int, pgrp: int) -> None:
    # A background group calling tcsetpgrp gets SIGTTOU; ignore it while taking back.
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, pgrp)
    finally:
        signal.signal(signal.SIGTTOU, previous)


def run_child(argv: Sequence[str], env: Mapping[str, str], guard: SignalGuard) -> int:
    """Start the command with `env`, wait for it, and return its raw return code."""
    terminal = _foreground_terminal()
    guard.phase = Phase.SPAWNING
    try:
        child = subprocess.Popen(list(argv), env=dict(env), process_group=0)
    except PermissionError as exc:
        raise CommandNotExecutable(
            f"the command {argv[0]!r} could not be executed: {exc.strerror}",
            "check its permissions",
        ) from exc
    except OSError as exc:
        raise CommandNotFound(
            f"the command {argv[0]!r} could not be started: {exc.strerror}",
            "check the command and its interpreter line",
        ) from exc
    try:
        if terminal is not None:
            _hand_terminal(terminal, child.pid)
            # The child may have touched the terminal before it was its own, and stopped.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGCONT)
        guard.child_started(child)
        return child.wait()
    finally:
        guard.child_ended()
        if terminal is not None:
            _hand_terminal(terminal, os.getpgrp())


def run(prepared: Prepared, *, quiet: bool = False, stderr: TextIO | None = None) -> int:
    """Issue, run, clean up; returns the exit code nhi-invoke should exit with."""
    plan = prepared.plan
    if child.ACTIVE_VARIABLE in prepared.environ:
        raise ConfigError(
            "nhi-invoke is already running in this environment "
            f"(NHI_INVOKE_ACTIVE={prepared.environ[child.ACTIVE_VARIABLE][:20]})",
            "run nhi-invoke once per step, not from inside its own command",
        )
    argv = resolve_command(plan.command, prepared.environ)
    invocation = Invocation(prepared, stderr=stderr, quiet=quiet)
    exit_code = EXIT_INTERNAL
    command_ended: datetime | None = None
    with SignalGuard(plan.kill_grace_seconds) as guard:
        invocation.begin(os.path.basename(argv[0]))
        try:
            env = invocation.open()
            invocation.command_started()
            try:
                returncode = run_child(argv, env, guard)
            finally:
                # The endpoints end with the command, before cleanup, whatever it left
                # running in the background.
                invocation.command_ended()
            command_ended = datetime.now(UTC)
            exit_code = exit_status(returncode)
            invocation.command_exited(exit_code, -returncode if returncode < 0 else None)
            if guard.received is not None:
                exit_code = 128 + guard.received
        except NhiError as error:
            exit_code = error.exit_code
            invocation.failed(error)
            raise
        finally:
            guard.phase = Phase.CLEANUP
            invocation.close(exit_code, signal=guard.received, ended=command_ended)
            lost = invocation.unrecorded
            if lost is not None and exit_code != 0:
                # The run fails already, with its own code; the lost lines are said, once.
                print(
                    f"nhi-invoke: error: {lost.one_line()}", file=stderr or sys.stderr, flush=True
                )
    if invocation.unrecorded is not None and exit_code == 0:
        raise invocation.unrecorded  # a command that succeeded, with an incomplete ledger: 74
    return exit_code

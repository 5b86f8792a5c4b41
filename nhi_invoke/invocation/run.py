"""`nhi-invoke run`: open the invocation, run the command under signal handling, close.

The only place where the invocation meets a process: signals are handled from before the
first credential is issued until the last is released, and the command's exit code (128+N
when signal N killed it) is what nhi-invoke exits with.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TextIO

from nhi_invoke.errors import ConfigError, NhiError
from nhi_invoke.invocation import child, process
from nhi_invoke.invocation.flow import EXIT_INTERNAL, Invocation
from nhi_invoke.invocation.prepare import Prepared


def run(prepared: Prepared, *, quiet: bool = False, stderr: TextIO | None = None) -> int:
    """Issue, run, clean up; returns the exit code nhi-invoke should exit with."""
    plan = prepared.plan
    if child.ACTIVE_VARIABLE in prepared.environ:
        raise ConfigError(
            "nhi-invoke is already running in this environment "
            f"(NHI_INVOKE_ACTIVE={prepared.environ[child.ACTIVE_VARIABLE][:20]})",
            "run nhi-invoke once per step, not from inside its own command",
        )
    argv = process.resolve_command(plan.command, prepared.environ)
    invocation = Invocation(prepared, stderr=stderr, quiet=quiet)
    exit_code = EXIT_INTERNAL
    command_ended: datetime | None = None
    with process.SignalGuard(plan.kill_grace_seconds) as guard:
        invocation.begin(os.path.basename(argv[0]))
        try:
            env = invocation.open()
            invocation.command_started()
            try:
                returncode = process.run_child(argv, env, guard)
            finally:
                # The endpoints end with the command, before cleanup, whatever it left
                # running in the background.
                invocation.command_ended()
            command_ended = datetime.now(UTC)
            exit_code = process.exit_status(returncode)
            invocation.command_exited(exit_code, -returncode if returncode < 0 else None)
            if guard.received is not None:
                exit_code = 128 + guard.received
        except NhiError as error:
            exit_code = error.exit_code
            invocation.failed(error)
            raise
        finally:
            guard.phase = process.Phase.CLEANUP
            invocation.close(exit_code, signal=guard.received, ended=command_ended)
    return exit_code

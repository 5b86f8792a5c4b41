"""The Python API: one invocation per task of a long-lived process (docs/agents.md).

`invocation(**settings)` prepares an invocation exactly as `nhi-invoke run` does (the same
options, variables, config file and validation) and returns it unopened; `with` or
`async with` opens it (issues its credentials, records them) and releases everything when the
block ends, however it ends. `with_invocation(...)` does the same around each call of a
function; `current_invocation()` finds the innermost open one through `contextvars`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar, Unpack, cast

from nhi_invoke.ci.explicit import NoTokenSource
from nhi_invoke.errors import ConfigError
from nhi_invoke.ledger.key import FD_PREFIX
from nhi_invoke.tasks import completion, keywords
from nhi_invoke.tasks.keywords import InvocationSettings
from nhi_invoke.tasks.lifetime import (
    CANCELLED,
    CLOSED,
    EXCEPTION,
    INTERRUPTED,
    RETURNED,
    State,
    TaskLifetime,
)
from nhi_invoke.tasks.sdks import SdkAccessors

# Called with the audience; returns an OIDC token for it (asked again for a fresh one).
TokenSupplier = Callable[[str], str]
F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "nhi_invoke_current_invocation", default=None
)
_log = logging.getLogger("nhi_invoke")
TASK_KEYS = ("task_id", "agent", "on_behalf_of")


def _report(text: str) -> None:
    """Our messages go to the `nhi_invoke` logger: a library does not print."""
    if text.startswith("warning: "):
        _log.warning("%s", text.removeprefix("warning: "))
    elif text.startswith("error: "):
        _log.error("%s", text.removeprefix("error: "))
    else:
        _log.info("%s", text)


def _ending(exc_type: type[BaseException] | None) -> tuple[str, str | None]:
    """How a block ended, and the exception's class (never its message, which may hold data)."""
    if exc_type is None:
        return RETURNED, None
    if issubclass(exc_type, asyncio.CancelledError):
        return CANCELLED, None
    name = exc_type.__qualname__
    module = exc_type.__module__
    qualified = name if module == "builtins" else f"{module}.{name}"
    return (INTERRUPTED if issubclass(exc_type, KeyboardInterrupt) else EXCEPTION), qualified


class Invocation(SdkAccessors):
    """One task's credentials: issued when the block opens, released when it ends.

    Made by `nhi_invoke.invocation()`; used once, as `with … as inv:` or `async with … as inv:`.
    """

    def __init__(self, lifetime: TaskLifetime) -> None:
        self._lifetime = lifetime
        self._context_token: contextvars.Token[Invocation | None] | None = None

    @property
    def invocation_id(self) -> str:
        """The invocation's id: in the ledger, session names, tags and `audit trace`."""
        return self._lifetime.prepared.plan.invocation_id

    @property
    def task_id(self) -> str:
        """The task (or step) id this invocation serves."""
        return self._lifetime.prepared.plan.step_id

    @property
    def env(self) -> dict[str, str]:
        """The environment a subprocess tool of this task should get (a copy): the process's
        own, without other identities, with this task's credentials."""
        return self._lifetime.env

    @property
    def principals(self) -> Mapping[str, str]:
        """Who the task's credentials act as (a role session, an account), by broker name."""
        return {grant.broker: grant.principal for grant in self._lifetime.grants}

    @property
    def expires_at(self) -> datetime | None:
        """When the first of the task's credentials expires (if nothing revokes it sooner);
        None when it holds none (it failed to open)."""
        return min((grant.expires_at for grant in self._lifetime.grants), default=None)

    @property
    def closed(self) -> bool:
        """Whether its credentials were released (or it failed to open)."""
        return self._lifetime.state is State.CLOSED

    def close(self) -> None:
        """Release the credentials now, from any thread (the block's end then does nothing);
        blocks until they are released. Harmless when already closed."""
        self._lifetime.finish(CLOSED)

    def _credential(self, broker: str, option: str) -> tuple[Any, Any]:
        grant = next((g for g in self._lifetime.secret_grants() if g.broker == broker), None)
        plan = self._lifetime.prepared.plan.broker(broker)
        if grant is None or plan is None:
            raise ConfigError(
                f"this invocation holds no {broker} credential",
                f"give it {option}= (or the variable that sets it)",
            )
        return grant, plan

    def _enter_context(self) -> None:
        self._context_token = _current.set(self)

    def _leave_context(self) -> None:
        token, self._context_token = self._context_token, None
        if token is not None:
            # Left from another context than it was entered in: nothing to undo here.
            with contextlib.suppress(ValueError):
                _current.reset(token)

    def __enter__(self) -> Invocation:
        _, interrupted = completion.blocking(self._lifetime.open)
        if interrupted is not None:
            completion.blocking(lambda: self._lifetime.finish(INTERRUPTED, "KeyboardInterrupt"))
            raise interrupted
        self._enter_context()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave_context()
        ended_by, exception = _ending(exc_type)
        _, interrupted = completion.blocking(lambda: self._lifetime.finish(ended_by, exception))
        if interrupted is not None:
            raise interrupted

    async def __aenter__(self) -> Invocation:
        _, cancelled = await completion.awaited(self._lifetime.open)
        if cancelled:
            await completion.awaited(lambda: self._lifetime.finish(CANCELLED))
            raise asyncio.CancelledError
        self._enter_context()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave_context()
        ended_by, exception = _ending(exc_type)
        _, cancelled = await completion.awaited(lambda: self._lifetime.finish(ended_by, exception))
        if cancelled and exc_type is None:
            raise asyncio.CancelledError

    def __repr__(self) -> str:
        return f"<nhi_invoke.Invocation {self.invocation_id} {self._lifetime.state.value}>"


def _prepared_invocation(
    settings: Mapping[str, Any],
    token: TokenSupplier | None,
    environ: Mapping[str, str] | None,
    command: str,
) -> Invocation:
    from nhi_invoke.invocation.prepare import RunRequest, prepare  # noqa: PLC0415

    if token is not None and not callable(token):
        raise TypeError("token= takes a callable: token=lambda audience: <an OIDC token>")
    env = dict(os.environ if environ is None else environ)
    given = keywords.checked(settings, env)
    _inherit_task(given)
    # `run`'s switches for a child process, which a variable or the config file may set for
    # the CLI's runs: an in-process task neither serves nor publishes a CI step's outputs.
    given |= {"serve": False, "step_outputs": False}
    prepared = prepare(RunRequest(given, ()), env, os.getcwd(), token=token)
    key_file = prepared.plan.ledger_key_file
    if key_file is not None and key_file.startswith(FD_PREFIX):
        raise ConfigError(
            f"the ledger key source {key_file!r} is a descriptor, read once and closed: the "
            "next invocation of this process would read whatever reuses that number",
            "pass ledger_key_file= a key file (mode 0600), or set NHI_LEDGER_KEY",
        )
    if isinstance(prepared.token_source, NoTokenSource):
        prepared.token_source.fetch("")  # no token can ever come: say so now, not at the block
    return Invocation(TaskLifetime(prepared, command, _report))


def _inherit_task(given: dict[str, Any]) -> None:
    """A nested invocation (a tool call within a task) serves the same task, unless told."""
    outer = _current.get()
    task = outer._lifetime.prepared.plan.task if outer is not None else None
    if task is None:
        return
    if given.get("step_id") is None and given.get("task_id") is None and task.task_id:
        given["task_id"] = task.task_id
    for key, value in (("agent", task.agent), ("on_behalf_of", task.on_behalf_of)):
        if given.get(key) is None and value is not None:
            given[key] = value


def invocation(
    *,
    token: TokenSupplier | None = None,
    environ: Mapping[str, str] | None = None,
    **settings: Unpack[InvocationSettings],
) -> Invocation:
    """An invocation for one task, checked and planned but not yet open: enter it with `with`
    or `async with`. Settings are `run`'s options by their Python names; `token` supplies the
    OIDC token for an audience; `environ` replaces `os.environ` as the source of `NHI_*`
    variables and the base of `inv.env`. Raises `NhiError` subclasses for invalid settings."""
    return _prepared_invocation(settings, token, environ, "python")


def with_invocation(
    *,
    token: TokenSupplier | None = None,
    environ: Mapping[str, str] | None = None,
    **settings: Unpack[InvocationSettings],
) -> Callable[[F], F]:
    """Run each call of the decorated function (plain or `async def`) under an invocation of
    its own, opened before the call and released when it returns, raises or is cancelled."""
    keywords.checked(settings, os.environ if environ is None else environ)

    def decorate(function: F) -> F:
        command = f"python:{function.__qualname__}"
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with _prepared_invocation(settings, token, environ, command):
                    return await function(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _prepared_invocation(settings, token, environ, command):
                return function(*args, **kwargs)

        return cast(F, run)

    return decorate


def current_invocation() -> Invocation:
    """The innermost invocation open in this context (a thread, or an asyncio task and the
    tasks it starts); LookupError when there is none."""
    found = _current.get()
    if found is None:
        raise LookupError(
            "no nhi-invoke invocation is open in this context: open one with `with "
            "nhi_invoke.invocation(...)`, or run the thread in contextvars.copy_context()"
        )
    return found

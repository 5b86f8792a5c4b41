"""Refresh ahead: under --serve, a credential is re-issued in the background before it gets
near its expiry, so that a client's request is answered at once with the current one.

The SDKs wait for an endpoint's answer for as little as one second, with no retry (the
JavaScript SDK's `fromContainerMetadata()`), and an exchange can take longer than that. So a
request never waits for an exchange unless nothing valid is left: the refresher's thread
re-issues once the credential has less than the margin left, and swaps it in when the new
one exists (recorded, like every grant, the moment it is issued). A failed re-issue is tried
again while the current credential is still served; only when it has expired does a request
wait for (and, if it fails, report) the next attempt.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from nhi_invoke.brokers.grants import Grant, GrantRecorder, TokenSupplier
from nhi_invoke.diagnostics import Log
from nhi_invoke.errors import NhiError, UnavailableError

log = Log("refresh")
# A credential with less than this left is not handed out: the client's call would reach the
# cloud after it expired.
USABLE_SECONDS = 5.0
# After a failed re-issue, the next attempt comes this much later (sooner if a client is
# waiting because nothing valid is left).
RETRY_SECONDS = 10.0


def _now() -> datetime:
    return datetime.now(UTC)


class Refresher:
    """One broker's current credential, re-issued in the background before it expires.

    `start()` once the first credential is served, `stop()` when the command has exited: an
    exchange in flight is finished (and so recorded, and later released), none is started.
    """

    def __init__(
        self,
        first: Grant,
        issue: Callable[[], Grant],
        margin_seconds: float,
        *,
        tokens: TokenSupplier,
        record: GrantRecorder,
        wait_seconds: float = 60.0,
    ) -> None:
        self._current = first
        self._issue = issue
        # For endpoints that issue further grants themselves (see `CurrentGrant`).
        self.tokens = tokens
        self.record = record
        self.margin_seconds = margin_seconds
        self.wait_seconds = wait_seconds  # the longest a request waits for an expired one
        self.reissued = 0
        self._attempts = 0  # re-issues tried, failed or not
        self._failure: NhiError | None = None
        self._next_attempt: float | None = None  # seconds since the epoch, after a failure
        self._urgent = False
        self._in_flight = False
        self._stopping = False
        self._changed = threading.Condition()
        # The thread runs in the invocation's context (its network, its retry deadline).
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="nhi-refresh", daemon=True
        )

    @property
    def current(self) -> Grant:
        return self._current

    @property
    def in_flight(self) -> bool:
        """Whether a re-issue is under way (for benchmarks and tests)."""
        return self._in_flight

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No re-issue after this; waits for one under way (bounded by its own timeout)."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def get(self) -> Grant:
        """The current credential, at once while it is usable; else waits for the re-issue."""
        current = self._current
        if self._left(current) > USABLE_SECONDS:
            return current
        with self._changed:
            deadline = _now().timestamp() + self.wait_seconds
            attempts = self._attempts
            while self._left(self._current) <= USABLE_SECONDS:
                if self._stopping:
                    raise UnavailableError(
                        "the command has exited; no credential is served any more"
                    )
                tried = self._attempts > attempts and not self._in_flight and not self._urgent
                if tried and self._failure is not None:
                    raise self._failure
                self._urgent = True
                self._changed.notify_all()
                remaining = deadline - _now().timestamp()
                if remaining <= 0:
                    raise UnavailableError(
                        f"no credential was re-issued within {self.wait_seconds:g} s",
                        "check that the cloud is reachable",
                    )
                self._changed.wait(remaining)
            return self._current

    def _left(self, grant: Grant) -> float:
        return (grant.expires_at - _now()).total_seconds()

    def _due(self) -> float:
        """When the next re-issue should start (seconds since the epoch)."""
        due = self._current.expires_at.timestamp() - self.margin_seconds
        if self._next_attempt is not None:
            due = max(due, self._next_attempt)
        return due

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping and not self._urgent:
                    wait = self._due() - _now().timestamp()
                    if wait <= 0:
                        break
                    self._changed.wait(wait)
                if self._stopping:
                    return
                self._urgent = False
                self._in_flight = True
            self._reissue()

    def _reissue(self) -> None:
        try:
            grant = self._issue()
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, NhiError)
                else UnavailableError(
                    f"re-issuing failed: internal error ({type(exc).__name__})",
                    "re-run with --debug and report it",
                )
            )
            with self._changed:
                self._failure = error
                self._next_attempt = _now().timestamp() + RETRY_SECONDS
                self._in_flight = False
                self._attempts += 1
                self._changed.notify_all()
            log.warning(
                "re-issue failed (the current credential is served until it expires; "
                "retrying in %g s): %s",
                RETRY_SECONDS,
                error.one_line(),
            )
            return
        with self._changed:
            self._current = grant
            self._failure = None
            self._next_attempt = None
            self._in_flight = False
            self._attempts += 1
            self.reissued += 1
            self._changed.notify_all()
        log.debug("re-issued; the new credential expires %s", grant.expires_at.isoformat())

"""Bounded retries with full-jitter exponential backoff, only for failures worth retrying."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from nhi_invoke.diagnostics import Log

T = TypeVar("T")
log = Log("retry")


class Retryable(Exception):
    """Raised by an attempt whose failure is transient (throttling, 5xx, connection)."""

    def __init__(self, what: str, cause: BaseException | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.cause = cause


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, backoff base and cap, and a total time bound."""

    attempts: int = 6
    base_seconds: float = 0.25
    cap_seconds: float = 4.0
    total_seconds: float = 60.0


# The deadline of the retry loop running on this thread: a single request may not outlive it.
_deadline: ContextVar[float | None] = ContextVar("nhi_deadline", default=None)


def remaining(default: float) -> float:
    """Seconds a request may take: `default`, or less when the retry deadline is nearer."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    return max(0.05, min(default, deadline - time.monotonic()))


@dataclass
class RetryOutcome:
    """How many retries one call took, for the ledger and --debug."""

    retries: int = 0


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_give_up: Callable[[Retryable, int], Exception],
    outcome: RetryOutcome | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `attempt` until it succeeds, raises a non-retryable error, or the policy is spent.

    `on_give_up(last_failure, tries)` builds the error raised when retries run out.
    """
    deadline = clock() + policy.total_seconds
    outer = _deadline.get()
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        return _loop(attempt, policy, deadline, on_give_up, outcome, sleep, clock)
    finally:
        _deadline.reset(token)


def _loop(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    deadline: float,
    on_give_up: Callable[[Retryable, int], Exception],
    outcome: RetryOutcome | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> T:
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except Retryable as failure:
            import random  # noqa: PLC0415 - only when a call is retried (most runs never are)

            # Full jitter (Brooker, "Exponential Backoff and Jitter"): sleep uniformly in
            # [0, min(cap, base*2^n)].
            delay = random.uniform(0, min(policy.cap_seconds, policy.base_seconds * 2**tries))  # noqa: S311
            if tries >= policy.attempts or clock() + delay > deadline:
                raise on_give_up(failure, tries) from failure.cause
            log.debug("retry %d after %s; sleeping %.2f s", tries, failure.what, delay)
            if outcome is not None:
                outcome.retries += 1
            sleep(delay)

"""Renewal while the command runs: for brokers whose credentials can be renewed (a secrets
broker's token and its leases), so that they can be asked for short and kept alive only as
long as the command needs them, instead of long up front.

One background thread per invocation, started when the command starts and stopped (and
joined) the moment it ends, before anything is released: a renewal never races a
revocation. It sleeps until the earliest `next_renewal()` of the brokers and calls their
`renew()`; a broker that has nothing to renew costs nothing (no thread is started).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from nhi_invoke.brokers.grants import GrantRecorder
from nhi_invoke.brokers.interface import CredentialBroker
from nhi_invoke.diagnostics import Log

log = Log("renewal")


def _now() -> datetime:
    return datetime.now(UTC)


class Renewals:
    """Keeps the brokers' renewable credentials alive until `stop()`."""

    def __init__(
        self,
        runtimes: Mapping[str, CredentialBroker],
        recorder: Callable[[str], GrantRecorder],
        warn: Callable[[str], None],
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._runtimes = dict(runtimes)
        self._recorder = recorder
        self._warn = warn
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start renewing, if any broker has something to renew; whether it started."""
        if not any(r.next_renewal() is not None for r in self._runtimes.values()):
            return False
        self._thread = threading.Thread(target=self._loop, name="nhi-renewal", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop renewing and wait for a renewal in progress to finish. Harmless twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = {
                name: when
                for name, runtime in self._runtimes.items()
                if (when := runtime.next_renewal()) is not None
            }
            if not due:
                return
            wait = (min(due.values()) - self._clock()).total_seconds()
            if wait > 0 and self._stop.wait(wait):
                return
            now = self._clock()
            for name, when in due.items():
                if when <= now and not self._stop.is_set():
                    self._renew(name)

    def _renew(self, name: str) -> None:
        runtime = self._runtimes[name]
        try:
            warnings = runtime.renew(self._recorder(name))
        except Exception as error:  # a broker's bug must not end the command
            log.debug("renewal of %s failed: %s", name, type(error).__name__)
            self._warn(f"warning: renewing the {name} credentials failed ({type(error).__name__})")
            del self._runtimes[name]
            return
        for warning in warnings:
            self._warn(warning)
        after = runtime.next_renewal()
        if after is not None and after <= self._clock():
            # A renewal that is due again at once would spin: a broker's bug, not a plan.
            log.debug("%s asks to renew again at once; renewal stops for it", name)
            del self._runtimes[name]

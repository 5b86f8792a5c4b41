"""`nhi-invoke revoke`: finish what a crashed invocation could not.

Reads the ledger (typed records), finds credentials issued and neither revoked nor recorded
as expiring, and ends each through its broker's `recover`: the same release path an
invocation uses, with the broker's plan rebuilt from the ledger (a fresh OIDC token from this
step's CI where revoking needs one). Every action is appended to the ledger under the crashed
invocation's id.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nhi_invoke import brokers, settings
from nhi_invoke.brokers.grants import Grant, Release
from nhi_invoke.brokers.interface import BrokerPlan, CredentialBroker
from nhi_invoke.ci import detect
from nhi_invoke.ci.interface import CIProvider, NoReporting, Reporting, TokenSource
from nhi_invoke.errors import ConfigError, NhiError
from nhi_invoke.figures import moment
from nhi_invoke.invocation.journal import Journal
from nhi_invoke.invocation.release import release_all, unrecorded
from nhi_invoke.ledger import history, path_for, store
from nhi_invoke.ledger import key as ledger_key
from nhi_invoke.ledger.endings import InvocationFinished
from nhi_invoke.ledger.records import InvocationStarted
from nhi_invoke.retry import RetryPolicy
from nhi_invoke.settings.option import Option, OptionValues

RECOVERED_BY = "nhi-invoke revoke"
RECOVERY_ENTRY = "recovery-entry"  # a credential recovery itself issued, to revoke with


@dataclass(frozen=True)
class RecoveryRequest:
    ledger: str | None
    invocation: str | None
    token_file: str | None
    token_env: str | None
    ledger_key_file: str | None = None
    # The brokers' `recovery_options`, by option name (flags of `nhi-invoke revoke`).
    given: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What recovery did with one credential."""

    invocation_id: str
    principal: str
    action: str  # revoked, expiring, skipped
    detail: str
    error: NhiError | None = None


def _alive(started: InvocationStarted | None) -> bool:
    """Whether the invocation's process still runs on this host."""
    if started is None or started.pid is None or started.host != socket.gethostname():
        return False
    try:
        os.kill(started.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Recovery:
    def __init__(
        self,
        environ: Mapping[str, str],
        source: TokenSource,
        reporting: Reporting,
        path: str,
        key: ledger_key.LedgerKey | None,
        values: OptionValues,
    ) -> None:
        self.environ = environ
        self.key = key
        self.values = values
        self.source = source
        self.reporting = reporting
        self.path = path
        self.policy = RetryPolicy()

    def _runtimes(
        self, started: InvocationStarted | None
    ) -> tuple[dict[str, CredentialBroker], dict[str, tuple[str, str | None]]]:
        """Each broker of the crashed invocation, from the plan its ledger recorded."""
        runtimes: dict[str, CredentialBroker] = {}
        audiences: dict[str, tuple[str, str | None]] = {}
        for name, fields in (started.plans if started else {}).items():
            declared = brokers.declaration(name, self.environ)
            plan: BrokerPlan | None = (
                declared.recovery_plan_with(fields, self.environ, self.values) if declared else None
            )
            if declared is None or plan is None:
                continue  # its credentials are recorded with their expiry
            runtimes[name] = brokers.runtime(declared)(plan, self.policy)
            audiences[name] = (plan.audience, declared.audience_flag())
        return runtimes, audiences

    def invocation(self, found: history.InvocationHistory) -> list[Outcome]:
        started = found.started
        ledger = store.Ledger(self.path, found.invocation_id, found.step_id, key=self.key)
        # Whatever recovery itself issues (an entry session to revoke with) is named as such.
        journal = Journal(ledger, self.source, self.reporting, issued_purpose=RECOVERY_ENTRY)
        journal.tolerant = True  # recovery is all cleanup: a failing ledger stops no release
        journal.adopt(issued.grant() for issued in found.open_credentials())
        runtimes, audiences = self._runtimes(started)
        released = release_all(
            journal,
            runtimes,
            audiences,
            found.last_seen,  # the crash came after the last thing the invocation wrote
            recovering=True,
        )
        if found.finished is None:
            journal.write(InvocationFinished(exit_code=None, recovered_by=RECOVERED_BY))
        outcomes = [_outcome(found.invocation_id, g, r) for g, r in released]
        lost = unrecorded(journal)
        if lost is not None:
            outcomes.append(Outcome(found.invocation_id, "-", "unrecorded", lost.one_line(), lost))
        return outcomes


def _outcome(invocation_id: str, grant: Grant, release: Release) -> Outcome:
    action = "revoked" if release.revoked else "expiring"
    how = ", ".join(f"{k}={v}" for k, v in release.detail.items() if isinstance(v, str))
    if release.failure is not None:
        detail = release.failure
    elif release.revoked:
        detail = f"{release.method}: {how}" if how else release.method
    else:
        reason = release.detail.get("reason")
        detail = f"expires {moment(grant.expires_at)}" + (f" ({reason})" if reason else "")
    return Outcome(invocation_id, grant.principal, action, detail, release.error)


def recovery_options(environ: Mapping[str, str]) -> tuple[Option, ...]:
    """The options `nhi-invoke revoke` takes for the brokers (never from a config file)."""
    return tuple(o for d in brokers.declarations(environ) for o in d.recovery_options)


def recover(
    request: RecoveryRequest,
    environ: Mapping[str, str],
    *,
    providers: Sequence[CIProvider] | None = None,
) -> list[Outcome]:
    """Revoke or record every credential the ledger shows as still open."""
    path = path_for(request.ledger, environ)
    # Loaded once, before anything is revoked: a key from a descriptor can be read only once.
    key = ledger_key.load(environ, request.ledger_key_file)
    found = history.invocations(store.read(path))
    if request.invocation is not None and request.invocation not in {
        f.invocation_id for f in found
    }:
        raise ConfigError(
            f"the ledger {path} has no invocation {request.invocation}",
            "pass an invocation id from 'nhi-invoke audit show'",
        )
    _context, provider = detect.detect(environ, providers)
    source = detect.token_source(
        environ,
        provider,
        token_file=settings.outside_run("token_file", request.token_file, environ),
        token_env=settings.outside_run("token_env", request.token_env, environ),
        policy=RetryPolicy(),
    )
    reporting = provider.reporting(environ) if provider is not None else NoReporting()
    options = {o.name: o for o in recovery_options(environ)}
    values = OptionValues(options, request.given, environ, {}, "")
    recovery = _Recovery(environ, source, reporting, path, key, values)
    outcomes: list[Outcome] = []
    for invocation in found:
        if request.invocation is not None and invocation.invocation_id != request.invocation:
            continue
        if not invocation.open_credentials() and invocation.finished is not None:
            continue
        started = invocation.started
        if request.invocation is None and invocation.finished is None and _alive(started):
            pid = started.pid if started else None
            outcomes.append(
                Outcome(invocation.invocation_id, "-", "skipped", f"still running (pid {pid})")
            )
            continue
        outcomes += recovery.invocation(invocation)
    return outcomes

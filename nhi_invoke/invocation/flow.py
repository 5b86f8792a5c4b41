"""One invocation's credentials, start to end: the only module that knows their order.

Invocation.begin(), .open(): record the start; issue every broker's grants (concurrently),
record each the moment it exists, serve them with --serve, build the child's environment.
Invocation.close(): release every grant (revoke what can be, record the rest), finish the
ledger, write the CI's summary. Harmless twice.

Nothing here spawns a process or handles a signal (`process.py` does, around open and close),
and nothing here is shared between invocations: many may run at once in one process.
"""

from __future__ import annotations

import contextvars
import functools
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from nhi_invoke import __version__, brokers, net
from nhi_invoke.brokers.grants import CHILD, Grant, Release
from nhi_invoke.brokers.interface import CredentialBroker
from nhi_invoke.errors import NhiError, RecordError
from nhi_invoke.figures import moment
from nhi_invoke.invocation import child, summary
from nhi_invoke.invocation.journal import Journal
from nhi_invoke.invocation.prepare import Prepared
from nhi_invoke.invocation.private_folder import PrivateFolder
from nhi_invoke.invocation.release import release_all, unrecorded
from nhi_invoke.ledger import key as ledger_key
from nhi_invoke.ledger.endings import CommandExited, ErrorRecorded, InvocationFinished
from nhi_invoke.ledger.records import InvocationStarted
from nhi_invoke.ledger.store import Ledger

if TYPE_CHECKING:
    from nhi_invoke.invocation.refresh import Refresher
    from nhi_invoke.invocation.renewal import Renewals
    from nhi_invoke.invocation.serve import CredentialHost

EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug of ours, never a cloud or input problem


def _now() -> datetime:
    return datetime.now(UTC)


class Invocation:
    """One invocation's credentials: `open()` issues them, `close()` ends them.

    Holds the state of one invocation only; `process.py` wraps it in a process and signals,
    another caller may wrap it in a `with` block.
    """

    def __init__(
        self,
        prepared: Prepared,
        *,
        stderr: TextIO | None = None,
        quiet: bool = False,
        report: Callable[[str], None] | None = None,
    ) -> None:
        """`report` takes our messages instead of stderr (a library logs them)."""
        self.prepared = prepared
        self.plan = prepared.plan
        self._stderr = stderr or sys.stderr
        self._quiet = quiet
        self._report = report
        ledger = Ledger(
            self.plan.ledger_path,
            self.plan.invocation_id,
            self.plan.step_id,
            key=ledger_key.load(prepared.environ, self.plan.ledger_key_file),
        )
        self.journal = Journal(ledger, prepared.token_source, prepared.reporting)
        self.runtimes: dict[str, CredentialBroker] = {
            d.name: brokers.runtime(d)(p, prepared.retry_policy)
            for d, p in zip(prepared.declarations, self.plan.brokers, strict=True)
        }
        self.audiences = {
            d.name: (p.audience, d.audience_flag())
            for d, p in zip(prepared.declarations, self.plan.brokers, strict=True)
        }
        self._started = time.monotonic()
        self._host: CredentialHost | None = None
        self._refreshers: list[Refresher] = []
        self._renewals: Renewals | None = None
        self._closed: list[tuple[Grant, Release]] | None = None
        # Set by close() when ledger lines were lost: reported once, at the very end.
        self.unrecorded: RecordError | None = None
        self.folder = PrivateFolder(prepared.environ, self.plan.invocation_id)
        from nhi_invoke.net.connection import Network  # noqa: PLC0415 - no network on dry runs

        # Every request of this invocation goes through the network of its environment.
        self.network = Network(prepared.environ, self.plan.ca_bundle)

    def say(self, text: str) -> None:
        if self._report is not None:
            self._report(text)
        elif not self._quiet:
            print(f"nhi-invoke: {text}", file=self._stderr, flush=True)

    def _ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def _issue(self, name: str) -> Grant:
        audience, flag = self.audiences[name]
        return self.runtimes[name].issue(
            self.journal.tokens(audience, flag), self.journal.recorder(audience)
        )

    def _issue_all(self) -> dict[str, Grant]:
        """Every broker's credential; several brokers exchange at the same time.

        Every exchange is waited for, even after another failed or a signal arrived, so that
        whatever was minted is recorded before cleanup runs (each is bounded by --timeout).
        """
        names = list(self.runtimes)
        if len(names) == 1:
            return {names[0]: self._issue(names[0])}
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        grants: dict[str, Grant] = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="nhi-issue") as pool:
            # Each exchange runs in this invocation's context (its network).
            futures = {
                name: pool.submit(contextvars.copy_context().run, self._issue, name)
                for name in names
            }
            for name, future in futures.items():
                try:
                    grants[name] = future.result()
                except BaseException as error:
                    failure = failure or error
        if failure is not None:
            raise failure
        return grants

    def _serve(self, first: Mapping[str, Grant]) -> dict[str, dict[str, str]]:
        """Serve the first credentials, each re-issued ahead of its expiry from a fresh OIDC
        token."""
        from nhi_invoke.invocation.refresh import Refresher  # noqa: PLC0415
        from nhi_invoke.invocation.serve import CredentialHost  # noqa: PLC0415

        endpoints = {}
        for name, grant in first.items():

            def issue(name: str = name) -> Grant:
                return self._issue(name)

            audience, flag = self.audiences[name]
            refresher = Refresher(
                grant,
                issue,
                self.plan.refresh_margin_seconds,
                wait_seconds=self.prepared.retry_policy.total_seconds,
                tokens=self.journal.tokens(audience, flag),
                record=self.journal.recorder(audience),
            )
            self._refreshers.append(refresher)
            endpoints[name] = endpoint = self.runtimes[name].endpoint(refresher)
            # The command is given them: masked before it starts, like every grant.
            for secret in endpoint.secrets():
                self.journal.mask(secret.reveal())
        self._host = CredentialHost(endpoints)
        environments = self._host.environments()
        # The endpoints' random path (in every URL the command gets) and tokens (above) are
        # the command's secrets: masked before it starts, like every credential (a command
        # that prints its environment shows them). Paths such as a config folder are not.
        self.journal.mask(self._host.secret_path.strip("/"))
        self._host.start()
        for refresher in self._refreshers:
            refresher.start()
        return environments

    def begin(self, command_name: str) -> None:
        """Record the start (before anything is issued: a ledger that cannot be written
        fails here, with nothing to clean up)."""
        plan = self.plan
        if plan.keep_oidc_env:
            # Said on every run, not only in --dry-run: the pipeline chose it, and it matters.
            self.say(
                "warning: --keep-oidc-env: the command can request OIDC tokens and mint "
                "identities of its own"
            )
        self.journal.ledger.write(
            InvocationStarted(
                nhi_version=__version__,
                ci=plan.ci.as_dict(),
                step_source=plan.step_source,
                token_source=plan.token_source,
                command=command_name,
                brokers=plan.broker_names,
                pid=os.getpid(),
                host=socket.gethostname(),
                plans={p.broker: p.started_fields() for p in plan.brokers},
                task=plan.task.as_dict() if plan.task is not None else None,
            ),
            _now(),
        )

    def open(self) -> dict[str, str]:
        """Issue every grant and return the child's environment; after `begin`. Whatever
        happens, `close` ends what was issued."""
        with net.use(self.network):
            return self._open()

    def _open(self) -> dict[str, str]:
        plan = self.plan
        if plan.keep_oidc_env:
            # The command will see the CI's token-request secrets: hidden from the log first.
            for name in plan.ci.token_variables:
                if value := self.prepared.environ.get(name):
                    self.journal.mask(value)
        first = self._issue_all()
        # Every broker with --serve; without it, those whose SDKs read only an endpoint.
        to_serve = {
            part.broker: first[part.broker]
            for part in plan.brokers
            if plan.serve or part.always_served
        }
        served = self._serve(to_serve) if to_serve else None
        configured = {
            name: runtime.private_configuration(
                functools.partial(self.folder.folder, name),
                self.prepared.environ,
                name in to_serve,
            )
            for name, runtime in self.runtimes.items()
        }
        env = child.build(
            self.prepared.environ,
            {name: [grant] for name, grant in first.items()},
            plan.brokers,
            invocation_id=plan.invocation_id,
            step_id=plan.step_id,
            token_variables=plan.stripped_variables,
            served=served,
            configured=configured,
        )
        for grant in first.values():
            self.say(
                f"{plan.step_id} runs as {grant.principal} until "
                f"{moment(grant.expires_at)} (invocation {plan.invocation_id})"
                + (", refreshed while it runs" if grant.broker in to_serve else "")
            )
        return env

    def command_started(self) -> None:
        """The command is about to start: renew what needs renewing while it runs."""
        self.journal.child_running = True
        # The command runs: from now on nothing may stop cleanup, not even the ledger.
        self.journal.tolerant = True
        if any(r.next_renewal() is not None for r in self.runtimes.values()):
            from nhi_invoke.invocation.renewal import Renewals  # noqa: PLC0415

            self._renewals = Renewals(
                self.runtimes,
                lambda name: self.journal.recorder(self.audiences[name][0]),
                self.say,
            )
            self._renewals.start()

    def command_ended(self) -> None:
        """The command is gone: its endpoints and renewals end with it, whatever it left
        running, and a re-issue under way is finished (so that cleanup finds it recorded)."""
        self.journal.child_running = False
        if self._renewals is not None:
            self._renewals.stop()
        if self._host is not None:
            self._host.stop()
        for refresher in self._refreshers:
            refresher.stop()

    def command_exited(
        self,
        exit_code: int,
        signal: int | None,
        *,
        ended_by: str | None = None,
        exception: str | None = None,
    ) -> None:
        """Record the command's end (`ended_by`, `exception`: how a Python API block ended)."""
        self.journal.write(CommandExited(exit_code, signal, self._ms(), ended_by, exception))

    def failed(self, error: NhiError) -> None:
        """Record why the invocation failed; a ledger that fails too never hides `error`."""
        self.journal.tolerant = True
        self.journal.write(ErrorRecorded(error.exit_code, type(error).__name__, error.one_line()))

    def close(
        self, exit_code: int, *, signal: int | None = None, ended: datetime | None = None
    ) -> list[tuple[Grant, Release]]:
        """Release every grant, finish the ledger, write the CI's summary. `ended` is when
        the command ended (now, if it never ran). Harmless twice: the first result stands."""
        if self._closed is not None:
            return self._closed
        self._closed = []
        self.journal.tolerant = True
        self.command_ended()
        self.folder.remove()
        with net.use(self.network):
            released = release_all(
                self.journal, self.runtimes, self.audiences, ended or _now(), warn=self.say
            )
        self.network.close()
        self._closed = released
        self.journal.write(
            InvocationFinished(
                exit_code=exit_code,
                signal=signal,
                retries=sum(r.retries.retries for r in self.runtimes.values()),
                duration_ms=self._ms(),
            )
        )
        self._summarize(released, exit_code)
        self.unrecorded = unrecorded(self.journal)
        if self.plan.step_outputs:
            # After the command: for the names we set, ours are the last lines written.
            self.unrecorded = self._publish_outputs() or self.unrecorded
        return released

    def outputs(self) -> dict[str, str]:
        """The step outputs, from this invocation's memory (never from a file the command
        could write): its id, its ledger, and each broker's for the command's credential."""
        values = {
            "invocation-id": self.plan.invocation_id,
            "ledger-path": os.path.abspath(self.plan.ledger_path),
        }
        latest = {g.broker: g for g in self.journal.grants if g.purpose == CHILD}
        for declaration in brokers.declarations(self.prepared.environ):
            values.update(dict.fromkeys(declaration.step_outputs, ""))
            if declaration.name in latest:
                values.update(declaration.output_values(latest[declaration.name]))
        return values

    def _publish_outputs(self) -> RecordError | None:
        try:
            self.prepared.reporting.set_outputs(self.outputs())
        except (OSError, ValueError) as exc:
            return RecordError(
                f"the step outputs were not written: {exc}",
                "nothing was published; outputs hold names only, each on one line",
            )
        return None

    def _summarize(self, released: list[tuple[Grant, Release]], exit_code: int) -> None:
        text = summary.markdown(self.plan, released, exit_code, self.journal.ledger.head)
        try:
            self.prepared.reporting.write_summary(text)
        except OSError as exc:
            self.say(f"warning: could not write the job summary: {exc.strerror}")

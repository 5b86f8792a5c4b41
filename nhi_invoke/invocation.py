"""One invocation, start to end: the only module that knows the order of things.

prepare(): flags + environment -> Plan (no network, no token; `--dry-run` stops here).
execute(): issue -> spawn -> wait -> cleanup. Cleanup runs in `finally` on every path, and
every step of the way is one ledger event.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from nhi_invoke import __version__, childenv, ledger_key, naming, oidc, process
from nhi_invoke.ci import detect
from nhi_invoke.ci.github import add_mask
from nhi_invoke.ci.interface import TokenSource
from nhi_invoke.clouds.interface import (
    CredentialBroker,
    Grant,
    GrantRecorder,
    Release,
    TokenSupplier,
)
from nhi_invoke.config import RunFlags, resolve
from nhi_invoke.errors import ConfigError, NhiError
from nhi_invoke.ledger import Ledger, record_release, rfc3339
from nhi_invoke.plan import Plan, build
from nhi_invoke.retry import RetryPolicy

if TYPE_CHECKING:
    from nhi_invoke.serve import CredentialServer

EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug of ours, never a cloud or input problem


@dataclass(frozen=True)
class RunInput:
    """What `nhi-invoke run` was asked to do."""

    flags: RunFlags
    command: tuple[str, ...]
    quiet: bool = False


@dataclass(frozen=True)
class Prepared:
    """A plan plus what executing it needs that a plan must not hold (the environment)."""

    plan: Plan
    token_source: TokenSource
    environ: Mapping[str, str]
    retry_policy: RetryPolicy


def prepare(
    run_input: RunInput,
    environ: Mapping[str, str],
    cwd: str,
    *,
    policy: RetryPolicy | None = None,
    entropy: Callable[[int], bytes] = os.urandom,
) -> Prepared:
    """Resolve settings, detect the CI and decide the plan. No network, no token."""
    context, provider = detect.detect(environ)
    settings = resolve(run_input.flags, environ, context, cwd)
    policy = policy or RetryPolicy(total_seconds=settings.timeout_seconds)
    source = detect.token_source(
        environ,
        provider,
        token_file=settings.token_file,
        token_env=settings.token_env,
        policy=policy,
    )
    plan = build(
        settings,
        context,
        invocation_id=naming.invocation_id(entropy(10)),
        command=run_input.command,
        token_source=source.description,
        inherited=tuple(environ),
        extra_token_variables=(settings.token_env,) if settings.token_env else (),
    )
    return Prepared(plan=plan, token_source=source, environ=environ, retry_policy=policy)


def _now() -> datetime:
    return datetime.now(UTC)


def _grant_record(grant: Grant) -> dict[str, Any]:
    return {
        "cloud": grant.cloud,
        "purpose": grant.purpose,
        "principal": grant.principal,
        "principal_id": grant.principal_id,
        "session_name": grant.session_name,
        "access_key_id": grant.access_key_id,
        "fingerprint": grant.fingerprint,
        "expires_at": rfc3339(grant.expires_at),
        **grant.details,
    }


class _Run:
    """The mutable state of one execution; `execute` is its only user."""

    def __init__(self, prepared: Prepared, stderr: TextIO, quiet: bool, mask: bool) -> None:
        self.prepared = prepared
        self.plan = prepared.plan
        self.stderr = stderr
        self.quiet = quiet
        self.on_github = mask and self.plan.ci.provider == "github"
        self.ledger = Ledger(
            self.plan.ledger_path,
            self.plan.invocation_id,
            self.plan.step_id,
            key=ledger_key.load(prepared.environ),
        )
        self.grants: list[Grant] = []
        self.token_records: dict[str, dict[str, Any]] = {}
        self._masked: set[str] = set()
        self.child_running = False

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"nhi-invoke: {text}", file=self.stderr, flush=True)

    def mask(self, value: str) -> None:
        if self.on_github and value not in self._masked:
            self._masked.add(value)
            # While the command runs (a --serve refresh) its output may be mid-line: the
            # mask command must start a line of its own, or the runner would not see it.
            add_mask(value, own_line=self.child_running)

    def token_supplier(self, audience: str) -> TokenSupplier:
        """Fetches, masks and pre-flight checks an OIDC token for one audience."""

        def supply(fresh: bool) -> str:
            token = self.prepared.token_source.fetch(audience)
            self.mask(token)
            claims = oidc.load_checked(token, audience, time.time())
            self.token_records[audience] = {
                "claims": claims.recorded(),
                "fingerprint": oidc.fingerprint(token),
                "fresh": fresh,
            }
            return token

        return supply

    def grant_recorder(self, audience: str) -> GrantRecorder:
        def record(grant: Grant) -> None:
            # Masked before anything else happens: nothing may print a secret unmasked.
            for secret in grant.secrets:
                self.mask(secret.reveal())
            self.grants.append(grant)
            self.ledger.append(
                "credential.issued",
                _now(),
                **_grant_record(grant),
                oidc=self.token_records.get(audience, {}),
            )

        return record


def _brokers(plan: Plan, policy: RetryPolicy) -> list[CredentialBroker]:
    # Each SDK is imported only when its cloud is in the plan.
    brokers: list[CredentialBroker] = []
    if plan.aws is not None:
        from nhi_invoke.clouds.aws import AwsBroker  # noqa: PLC0415

        brokers.append(AwsBroker(plan.aws, policy))
    if plan.gcp is not None:
        from nhi_invoke.clouds.gcp import GcpBroker  # noqa: PLC0415

        brokers.append(GcpBroker(plan.gcp, policy))
    return brokers


def _issue_all(run: _Run, brokers: list[CredentialBroker]) -> list[Grant]:
    """Every cloud's credential; two clouds are exchanged at the same time.

    Every exchange is waited for, even after another failed or a signal arrived, so that
    whatever was minted is recorded before cleanup runs (each is bounded by --timeout).
    """
    if len(brokers) == 1:
        (broker,) = brokers
        return [
            broker.issue(run.token_supplier(broker.audience), run.grant_recorder(broker.audience))
        ]
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(max_workers=len(brokers), thread_name_prefix="nhi-issue") as pool:
        futures = [
            pool.submit(b.issue, run.token_supplier(b.audience), run.grant_recorder(b.audience))
            for b in brokers
        ]
        grants: list[Grant] = []
        failure: BaseException | None = None
        for future in futures:
            try:
                grants.append(future.result())
            except BaseException as error:
                failure = failure or error
    if failure is not None:
        raise failure
    return grants


def _started_fields(plan: Plan, command: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "nhi_version": __version__,
        "ci": plan.ci.as_dict(),
        "step_source": plan.step_source,
        "token_source": plan.token_source,
        "command": command,
        "clouds": list(plan.clouds),
        # Lets `nhi-invoke revoke` tell a crashed invocation from one still running.
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    if plan.aws is not None:
        fields["aws"] = {
            "session_name": plan.aws.session_name,
            "role_arn": plan.aws.role_arn,
            "entry_role_arn": plan.aws.entry_role_arn,
            "region": plan.aws.region,
            "audience": plan.aws.audience,
            "revocation": plan.aws.revocation,
        }
    if plan.gcp is not None:
        fields["gcp"] = {
            "provider": plan.gcp.provider,
            "service_account": plan.gcp.service_account,
            "request_reason": plan.gcp.request_reason,
        }
    return fields


def _release_all(
    run: _Run, brokers: list[CredentialBroker], ended: datetime
) -> list[tuple[Grant, Release]]:
    """End every credential issued, each the way its cloud allows, and record how.

    The command's credentials go first (they are what revocation protects); a revocation
    may mint a fresh entry session, which is then recorded and ended like the rest.
    """
    by_cloud = {broker.cloud: broker for broker in brokers}
    released: list[tuple[Grant, Release]] = []
    done = 0
    while done < len(run.grants):
        batch = sorted(run.grants[done:], key=lambda g: g.purpose != "child")
        done = len(run.grants)
        for grant in batch:
            broker = by_cloud[grant.cloud]
            audience = broker.audience
            release = broker.release(
                grant, ended, run.token_supplier(audience), run.grant_recorder(audience)
            )
            released.append((grant, release))
            record_release(run.ledger, grant, release)
            if release.failure is not None:
                run.say(
                    f"warning: {grant.principal} could not be revoked; it stays usable until "
                    f"{grant.expires_at:%H:%M:%S}Z ({release.failure})"
                )
    return released


def _credential_server(
    run: _Run, brokers: list[CredentialBroker], first: list[Grant]
) -> CredentialServer:
    """Serve the first credentials, re-issuing each from a fresh OIDC token when needed."""
    from nhi_invoke.serve import CredentialServer, Refresher  # noqa: PLC0415

    plan = run.plan
    refreshers: dict[str, Refresher] = {}
    for broker, grant in zip(brokers, first, strict=True):

        def issue(broker: CredentialBroker = broker) -> Grant:
            return broker.issue(
                run.token_supplier(broker.audience), run.grant_recorder(broker.audience)
            )

        refreshers[broker.cloud] = Refresher(grant, issue, plan.refresh_margin_seconds)
    gcp = plan.gcp
    server = CredentialServer(
        refreshers.get("aws"),
        refreshers.get("gcp"),
        gcp_project=gcp.project if gcp else None,
        gcp_project_number=gcp.provider.split("/")[1] if gcp else None,
        gcp_scopes=gcp.scopes if gcp else (),
    )
    server.start()
    return server


def _write_job_summary(run: _Run, released: list[tuple[Grant, Release]], exit_code: int) -> None:
    """On GitHub, append the invocation's summary to the job's summary page."""
    path = run.prepared.environ.get("GITHUB_STEP_SUMMARY")
    if not (run.on_github and path):
        return
    from nhi_invoke import render  # noqa: PLC0415

    text = render.job_summary(run.plan, released, exit_code, run.ledger.head)
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        run.say(f"warning: could not write the job summary: {exc.strerror}")


def execute(
    prepared: Prepared,
    *,
    quiet: bool = False,
    stderr: TextIO | None = None,
    mask_secrets: bool = True,
) -> int:
    """Issue, run, clean up; returns the exit code nhi-invoke should exit with.

    `mask_secrets=False` is for the sandbox only: it emulates GitHub's variables on a
    terminal, where `::add-mask::` lines would print the secrets instead of hiding them.
    """
    plan = prepared.plan
    if childenv.ACTIVE_VARIABLE in prepared.environ:
        raise ConfigError(
            "nhi-invoke is already running in this environment "
            f"(NHI_INVOKE_ACTIVE={prepared.environ[childenv.ACTIVE_VARIABLE][:20]})",
            "run nhi-invoke once per step, not from inside its own command",
        )
    argv = process.resolve_command(plan.command, prepared.environ)
    run = _Run(prepared, stderr or sys.stderr, quiet, mask_secrets)
    brokers = _brokers(plan, prepared.retry_policy)
    started = time.monotonic()
    exit_code = EXIT_INTERNAL
    command_ended: datetime | None = None
    with process.SignalGuard(plan.kill_grace_seconds) as guard:
        run.ledger.append(
            "invocation.started", _now(), **_started_fields(plan, os.path.basename(argv[0]))
        )
        try:
            child_grants = _issue_all(run, brokers)
            server = _credential_server(run, brokers, child_grants) if plan.serve else None
            env = childenv.build(
                prepared.environ,
                child_grants,
                invocation_id=plan.invocation_id,
                step_id=plan.step_id,
                aws_region=plan.aws.region if plan.aws else None,
                gcp_project=plan.gcp.project if plan.gcp else None,
                token_variables=plan.stripped_variables,
                endpoints=server.endpoints() if server else None,
            )
            for grant in child_grants:
                run.say(
                    f"{plan.step_id} runs as {grant.principal} until "
                    f"{grant.expires_at:%H:%M:%S}Z (invocation {plan.invocation_id})"
                    + (", refreshed while it runs" if server else "")
                )
            run.child_running = True
            try:
                returncode = process.run_child(argv, env, guard)
            finally:
                # The endpoints end with the command, before cleanup, whatever it left
                # running in the background.
                if server is not None:
                    server.stop()
                run.child_running = False
            command_ended = _now()
            exit_code = process.exit_status(returncode)
            run.ledger.append(
                "command.exited",
                command_ended,
                exit_code=exit_code,
                signal=-returncode if returncode < 0 else None,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
            if guard.received is not None:
                exit_code = 128 + guard.received
        except NhiError as error:
            exit_code = error.exit_code
            run.ledger.append(
                "error",
                _now(),
                exit_code=error.exit_code,
                error=type(error).__name__,
                message=error.one_line(),
            )
            raise
        finally:
            guard.phase = process.Phase.CLEANUP
            released = _release_all(run, brokers, command_ended or _now())
            run.ledger.append(
                "invocation.finished",
                _now(),
                exit_code=exit_code,
                signal=guard.received,
                retries=sum(b.retries.retries for b in brokers),
                duration_ms=int((time.monotonic() - started) * 1000),
            )
            _write_job_summary(run, released, exit_code)
    return exit_code

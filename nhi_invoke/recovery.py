"""`nhi-invoke revoke`: finish what a crashed invocation could not.

Reads the ledger, finds credentials issued and never revoked nor recorded as expiring, and
ends each as its cloud allows: an AWS session of a chained invocation is denied through a
fresh entry session (a fresh OIDC token from this step's CI); everything else is recorded
with its expiry. Every action is appended to the ledger under the crashed invocation's id.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nhi_invoke import config, ledger_key, oidc
from nhi_invoke.ci import detect
from nhi_invoke.ci.github import add_mask
from nhi_invoke.ci.interface import TokenSource
from nhi_invoke.clouds.interface import Grant, Release, expiring
from nhi_invoke.clouds.sts_query import parse_expiration
from nhi_invoke.errors import ConfigError, NhiError
from nhi_invoke.ledger import Ledger, record_release, rfc3339
from nhi_invoke.plan import REVOCATION_DENY_POLICY, AwsPlan
from nhi_invoke.retry import RetryPolicy
from nhi_invoke.validation import AWS_MIN_DURATION

CLOSING_EVENTS = ("credential.revoked", "credential.expiring")


@dataclass(frozen=True)
class RecoveryInput:
    ledger: str | None
    invocation: str | None
    token_file: str | None
    token_env: str | None


@dataclass(frozen=True)
class Outcome:
    """What recovery did with one credential."""

    invocation_id: str
    principal: str
    action: str  # revoked, expiring, skipped
    detail: str
    error: NhiError | None = None


def _events(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the ledger {path}: {exc.strerror}",
            "pass --ledger the ledger the step wrote",
        ) from exc
    events = []
    for number, line in enumerate(lines, start=1):
        try:
            events.append(json.loads(line))
        except ValueError as exc:
            raise ConfigError(
                f"line {number} of {path} is not JSON",
                "run 'nhi-invoke audit verify' on the ledger",
            ) from exc
    return events


def _alive(started: Mapping[str, Any]) -> bool:
    """Whether the invocation's process still runs on this host."""
    pid = started.get("pid")
    if started.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _grant(issued: Mapping[str, Any]) -> Grant:
    return Grant(
        cloud=issued["cloud"],
        purpose=issued["purpose"],
        principal=issued["principal"],
        principal_id=issued.get("principal_id"),
        session_name=issued.get("session_name"),
        access_key_id=issued.get("access_key_id"),
        expires_at=parse_expiration(issued["expires_at"]),
        fingerprint=issued["fingerprint"],
    )


def _aws_plan(started: Mapping[str, Any], environ: Mapping[str, str]) -> AwsPlan | None:
    """What revoking needs of the crashed invocation's AWS plan, from its started event."""
    aws = started.get("aws") or {}
    if not aws.get("entry_role_arn"):
        return None  # single hop: no session may deny another of its own role
    region = aws.get("region") or config.DEFAULT_REGION
    return AwsPlan(
        role_arn=aws["role_arn"],
        entry_role_arn=aws["entry_role_arn"],
        region=region,
        sts_endpoint=config.sts_endpoint(environ, region),
        audience=aws.get("audience") or config.DEFAULT_AWS_AUDIENCE,
        session_name=aws["session_name"],
        duration_seconds=AWS_MIN_DURATION,
        entry_duration_seconds=AWS_MIN_DURATION,
        tags=(),
        transitive_tag_keys=(),
        source_identity=None,
        session_policy=None,
        policy_arns=(),
        iam_endpoint=config.iam_endpoint(environ),
        revocation=REVOCATION_DENY_POLICY,
    )


class _Recovery:
    def __init__(self, environ: Mapping[str, str], source: TokenSource, on_github: bool) -> None:
        self.environ = environ
        self.source = source
        self.on_github = on_github
        self.policy = RetryPolicy()

    def supplier(self, audience: str) -> Any:
        def supply(fresh: bool) -> str:
            token = self.source.fetch(audience)
            if self.on_github:
                add_mask(token)
            oidc.load_checked(token, audience, datetime.now(UTC).timestamp())
            return token

        return supply

    def invocation(self, events: list[dict[str, Any]], ledger_path: str) -> list[Outcome]:
        started = next((e for e in events if e["event"] == "invocation.started"), events[0])
        invocation_id, step_id = started["invocation_id"], started.get("step_id", "")
        ledger = Ledger(ledger_path, invocation_id, step_id, key=ledger_key.load(self.environ))
        closed = {e.get("fingerprint") for e in events if e["event"] in CLOSING_EVENTS}
        open_grants = [
            _grant(e)
            for e in events
            if e["event"] == "credential.issued" and e["fingerprint"] not in closed
        ]
        # The crash came after the last thing the invocation wrote.
        last_seen = parse_expiration(events[-1]["time"])
        outcomes = []
        plan = _aws_plan(started, self.environ)
        broker = None
        if plan is not None:
            from nhi_invoke.clouds.aws import AwsBroker  # noqa: PLC0415

            broker = AwsBroker(plan, self.policy)
        fresh_entries: list[Grant] = []

        def record(grant: Grant) -> None:
            if self.on_github:
                for secret in grant.secrets:
                    add_mask(secret.reveal())
            fresh_entries.append(grant)
            ledger.append(
                "credential.issued",
                datetime.now(UTC),
                cloud=grant.cloud,
                purpose="recovery-entry",
                principal=grant.principal,
                principal_id=grant.principal_id,
                session_name=grant.session_name,
                access_key_id=grant.access_key_id,
                fingerprint=grant.fingerprint,
                expires_at=rfc3339(grant.expires_at),
            )

        for grant in sorted(open_grants, key=lambda g: g.purpose != "child"):
            now = datetime.now(UTC)
            release = expiring(grant, last_seen, reason="recorded by nhi-invoke revoke")
            error: NhiError | None = None
            if grant.expires_at <= now:
                release = expiring(grant, last_seen, reason="expired before recovery")
            elif broker is not None and grant.cloud == "aws" and grant.purpose == "child":
                try:
                    revocation = broker.revoke_session(
                        str(grant.principal_id),
                        grant.expires_at,
                        self.supplier(broker.audience),
                        record,
                    )
                    release = Release(
                        "deny-policy",
                        round((datetime.now(UTC) - last_seen).total_seconds(), 3),
                        {"policy_name": revocation.policy_name, "pruned": revocation.pruned},
                    )
                except NhiError as failure:
                    error = failure
                    release = expiring(grant, last_seen, failure=failure.one_line())
            record_release(ledger, grant, release, recovered=True)
            action = "revoked" if release.method != "expire" else "expiring"
            detail = release.failure or str(
                release.detail.get("policy_name") or f"expires {rfc3339(grant.expires_at)}"
            )
            outcomes.append(Outcome(invocation_id, grant.principal, action, detail, error))
        for entry in fresh_entries:
            ledger.append(
                "credential.expiring",
                datetime.now(UTC),
                cloud=entry.cloud,
                purpose="recovery-entry",
                principal=entry.principal,
                fingerprint=entry.fingerprint,
                expires_at=rfc3339(entry.expires_at),
                revocation="expire",
                exposure_seconds=round((entry.expires_at - datetime.now(UTC)).total_seconds(), 3),
            )
        if not any(e["event"] == "invocation.finished" for e in events):
            ledger.append(
                "invocation.finished",
                datetime.now(UTC),
                exit_code=None,
                recovered=True,
                by="nhi-invoke revoke",
            )
        return outcomes


def recover(request: RecoveryInput, environ: Mapping[str, str]) -> list[Outcome]:
    """Revoke or record every credential the ledger shows as still open."""
    path = request.ledger or environ.get("NHI_LEDGER") or config.default_ledger_path(environ)
    by_invocation: dict[str, list[dict[str, Any]]] = {}
    for event in _events(path):
        by_invocation.setdefault(str(event.get("invocation_id")), []).append(event)
    if request.invocation is not None and request.invocation not in by_invocation:
        raise ConfigError(
            f"the ledger {path} has no invocation {request.invocation}",
            "pass an invocation id from 'nhi-invoke audit show'",
        )
    context, provider = detect.detect(environ)
    source = detect.token_source(
        environ,
        provider,
        token_file=request.token_file,
        token_env=request.token_env,
        policy=RetryPolicy(),
    )
    recovery = _Recovery(environ, source, on_github=context.provider == "github")
    outcomes: list[Outcome] = []
    for invocation_id, events in by_invocation.items():
        if request.invocation is not None and invocation_id != request.invocation:
            continue
        started = next((e for e in events if e["event"] == "invocation.started"), {})
        finished = any(e["event"] == "invocation.finished" for e in events)
        if request.invocation is None and not finished and _alive(started):
            outcomes.append(
                Outcome(invocation_id, "-", "skipped", f"still running (pid {started.get('pid')})")
            )
            continue
        outcomes += recovery.invocation(events, path)
    return outcomes

"""The ledger's events as typed records: each record writes its own fields, and reads them back.

The on-disk names are the ledger's format (SPEC: "Audit ledger") and do not change with the
code: a broker is the `cloud` field, the brokers of an invocation its `clouds`, and each
broker's part of the plan sits under the broker's name in `invocation.started`.

Records are typed named tuples rather than frozen dataclasses: as immutable and as typed, and
a quarter of the cost to define, which every invocation pays on its way to the first line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from nhi_invoke.brokers.grants import Grant, Release
from nhi_invoke.ledger.endings import CommandExited, ErrorRecorded, InvocationFinished

_NOTHING: Mapping[str, Any] = MappingProxyType({})


def rfc3339(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


class InvocationStarted(NamedTuple):
    nhi_version: str
    ci: Mapping[str, str]
    step_source: str
    token_source: str
    command: str
    brokers: tuple[str, ...]
    # Lets `nhi-invoke revoke` tell a crashed invocation from one still running.
    pid: int | None
    host: str | None
    plans: Mapping[str, Mapping[str, Any]]  # each broker's `started_fields`, by name
    # An agent's task (id, agent, on_behalf_of), when the invocation named one.
    task: Mapping[str, str] | None = None

    @property
    def event(self) -> str:
        return "invocation.started"

    def fields(self) -> dict[str, Any]:
        task = {"task": dict(self.task)} if self.task else {}
        return {
            "nhi_version": self.nhi_version,
            "ci": dict(self.ci),
            "step_source": self.step_source,
            "token_source": self.token_source,
            "command": self.command,
            "clouds": list(self.brokers),
            "pid": self.pid,
            "host": self.host,
            **task,
            **{name: dict(plan) for name, plan in self.plans.items()},
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> InvocationStarted:
        names = tuple(str(n) for n in fields.get("clouds") or ())
        pid = fields.get("pid")
        return cls(
            nhi_version=str(fields.get("nhi_version", "")),
            ci=dict(fields.get("ci") or {}),
            step_source=str(fields.get("step_source", "")),
            token_source=str(fields.get("token_source", "")),
            command=str(fields.get("command", "")),
            brokers=names,
            pid=pid if isinstance(pid, int) else None,
            host=fields.get("host"),
            plans={n: dict(fields[n]) for n in names if isinstance(fields.get(n), dict)},
            task=_strings(fields.get("task")),
        )


def _strings(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): v for k, v in value.items() if isinstance(v, str)} or None


_GRANT_FIELDS = (
    "cloud",
    "purpose",
    "principal",
    "principal_id",
    "session_name",
    "access_key_id",
    "fingerprint",
    "expires_at",
)


class CredentialIssued(NamedTuple):
    """One credential, the moment it exists: who it is, when it ends, never its secret."""

    broker: str
    purpose: str
    principal: str
    principal_id: str | None
    session_name: str | None
    access_key_id: str | None
    fingerprint: str
    expires_at: datetime
    details: Mapping[str, Any] = _NOTHING  # the broker's own fields
    oidc: Mapping[str, Any] | None = None  # the token it came from: claims and fingerprint

    @property
    def event(self) -> str:
        return "credential.issued"

    @classmethod
    def of(
        cls, grant: Grant, oidc: Mapping[str, Any] | None, *, purpose: str | None = None
    ) -> CredentialIssued:
        return cls(
            broker=grant.broker,
            purpose=purpose or grant.purpose,
            principal=grant.principal,
            principal_id=grant.principal_id,
            session_name=grant.session_name,
            access_key_id=grant.access_key_id,
            fingerprint=grant.fingerprint,
            expires_at=grant.expires_at,
            details=dict(grant.details),
            oidc=oidc,
        )

    def fields(self) -> dict[str, Any]:
        found = {
            "cloud": self.broker,
            "purpose": self.purpose,
            "principal": self.principal,
            "principal_id": self.principal_id,
            "session_name": self.session_name,
            "access_key_id": self.access_key_id,
            "fingerprint": self.fingerprint,
            "expires_at": rfc3339(self.expires_at),
            **self.details,
        }
        if self.oidc is not None:
            found["oidc"] = dict(self.oidc)
        return found

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> CredentialIssued:
        return cls(
            broker=str(fields.get("cloud", "?")),
            purpose=str(fields.get("purpose", "?")),
            principal=str(fields.get("principal", "?")),
            principal_id=fields.get("principal_id"),
            session_name=fields.get("session_name"),
            access_key_id=fields.get("access_key_id"),
            fingerprint=str(fields.get("fingerprint", "")),
            expires_at=parse_time(str(fields["expires_at"])),
            details={k: v for k, v in fields.items() if k not in (*_GRANT_FIELDS, "oidc")},
            oidc=fields.get("oidc"),
        )

    def grant(self) -> Grant:
        """The credential as a broker sees it, without its secret (for recovery)."""
        return Grant(
            broker=self.broker,
            purpose=self.purpose,
            principal=self.principal,
            principal_id=self.principal_id,
            session_name=self.session_name,
            access_key_id=self.access_key_id,
            expires_at=self.expires_at,
            fingerprint=self.fingerprint,
            details=dict(self.details),
        )


class CredentialUpdated(NamedTuple):
    """A credential as it is after a change (renewed, or what was obtained with it since):
    the fields of `credential.issued` as they are now. The last update of a credential holds."""

    now: CredentialIssued

    @property
    def event(self) -> str:
        return "credential.updated"

    @property
    def fingerprint(self) -> str:
        return self.now.fingerprint

    @classmethod
    def of(cls, grant: Grant) -> CredentialUpdated:
        return cls(CredentialIssued.of(grant, None))

    def fields(self) -> dict[str, Any]:
        return self.now.fields()

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> CredentialUpdated:
        return cls(CredentialIssued.from_fields(fields))


_CLOSING_FIELDS = (
    "cloud",
    "purpose",
    "principal",
    "principal_id",
    "access_key_id",
    "fingerprint",
    "expires_at",
    "revocation",
    "exposure_seconds",
    "revocation_failure",
)


class CredentialClosed(NamedTuple):
    """How one credential ended: `credential.revoked`, or `credential.expiring` with when."""

    broker: str
    purpose: str
    principal: str
    principal_id: str | None
    access_key_id: str | None
    fingerprint: str
    expires_at: datetime
    method: str  # "expire", or how it was revoked
    exposure_seconds: float | None
    failure: str | None
    detail: Mapping[str, Any] = _NOTHING  # reason, policy name, recovered…

    @property
    def event(self) -> str:
        return "credential.expiring" if self.method == "expire" else "credential.revoked"

    @classmethod
    def of(cls, grant: Grant, release: Release, **extra: Any) -> CredentialClosed:
        return cls(
            broker=grant.broker,
            purpose=grant.purpose,
            principal=grant.principal,
            principal_id=grant.principal_id,
            access_key_id=grant.access_key_id,
            fingerprint=grant.fingerprint,
            expires_at=grant.expires_at,
            method=release.method,
            exposure_seconds=release.exposure_seconds,
            failure=release.failure,
            detail={**extra, **release.detail},
        )

    def fields(self) -> dict[str, Any]:
        return {
            "cloud": self.broker,
            "purpose": self.purpose,
            "principal": self.principal,
            "principal_id": self.principal_id,
            "access_key_id": self.access_key_id,
            "fingerprint": self.fingerprint,
            "expires_at": rfc3339(self.expires_at),
            "revocation": self.method,
            "exposure_seconds": self.exposure_seconds,
            "revocation_failure": self.failure,
            **self.detail,
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> CredentialClosed:
        exposure = fields.get("exposure_seconds")
        return cls(
            broker=str(fields.get("cloud", "?")),
            purpose=str(fields.get("purpose", "?")),
            principal=str(fields.get("principal", "?")),
            principal_id=fields.get("principal_id"),
            access_key_id=fields.get("access_key_id"),
            fingerprint=str(fields.get("fingerprint", "")),
            expires_at=parse_time(str(fields["expires_at"])),
            method=str(fields.get("revocation", "expire")),
            exposure_seconds=float(exposure) if isinstance(exposure, int | float) else None,
            failure=fields.get("revocation_failure"),
            detail={k: v for k, v in fields.items() if k not in _CLOSING_FIELDS},
        )


Record = (
    InvocationStarted
    | CredentialIssued
    | CredentialUpdated
    | CredentialClosed
    | CommandExited
    | InvocationFinished
    | ErrorRecorded
)
_READERS: Mapping[str, Any] = {
    "invocation.started": InvocationStarted.from_fields,
    "credential.issued": CredentialIssued.from_fields,
    "credential.updated": CredentialUpdated.from_fields,
    "credential.revoked": CredentialClosed.from_fields,
    "credential.expiring": CredentialClosed.from_fields,
    "command.exited": CommandExited.from_fields,
    "invocation.finished": InvocationFinished.from_fields,
    "error": ErrorRecorded.from_fields,
}
ENVELOPE = ("v", "time", "event", "invocation_id", "step_id", "prev", "key_id", "hmac")


class Entry(NamedTuple):
    """One line of the ledger: its envelope, and its record (None for an event we do not know)."""

    number: int
    time: datetime
    event: str
    invocation_id: str
    step_id: str
    record: Record | None

    @classmethod
    def parse(cls, number: int, line: Mapping[str, Any]) -> Entry:
        event = str(line.get("event", ""))
        fields = {k: v for k, v in line.items() if k not in ENVELOPE}
        reader = _READERS.get(event)
        return cls(
            number=number,
            time=parse_time(str(line["time"])),
            event=event,
            invocation_id=str(line.get("invocation_id")),
            step_id=str(line.get("step_id", "")),
            record=reader(fields) if reader is not None else None,
        )

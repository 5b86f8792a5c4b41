"""The values `audit trace` passes between its modules: what the ledgers say was issued, what
the clouds' logs say was done, and what one was tied to the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from nhi_invoke.tasks.context import TaskContext


@dataclass(frozen=True)
class Problem:
    """An input that could not be used in full: one line for a person, never a traceback."""

    path: str
    message: str
    hint: str = ""

    def one_line(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text}; fix: {self.hint}" if self.hint else text


@dataclass(frozen=True)
class Credential:
    """One credential a ledger says an invocation held (no secret: names and fingerprints)."""

    cloud: str  # aws, gcp, vault, azure
    purpose: str  # child: the command's; entry: nhi-invoke's own first hop
    principal: str  # assumed-role ARN, service account, federated principal, vault role
    issued_at: datetime
    expires_at: datetime
    fingerprint: str
    access_key_id: str | None = None
    session_name: str | None = None
    role_arn: str | None = None
    source_identity: str | None = None
    kind: str | None = None  # GCP: service_account or federated
    federated_principal: str | None = None
    request_reason: str | None = None
    accessor: str | None = None  # Vault token accessor (not secret)
    token_id: str | None = None  # Azure: the token's `uti` (sign-ins' uniqueTokenIdentifier)
    client_request_id: str | None = None  # Azure: the invocation's correlation id in Entra
    principal_id: str | None = None  # Azure: the service principal's object id (`oid`)
    closed_at: datetime | None = None  # when nhi-invoke revoked it or recorded its expiry


@dataclass(frozen=True)
class CiRun:
    """Who ran the invocation, as the ledger's `invocation.started` recorded it."""

    provider: str | None = None
    repository: str | None = None
    run_id: str | None = None
    run_attempt: str | None = None
    sha: str | None = None
    actor: str | None = None
    ref: str | None = None
    workflow: str | None = None


@dataclass(frozen=True)
class Invocation:
    """One invocation from the ledgers: the step, the run, its credentials and its end."""

    invocation_id: str
    step_id: str
    ledger: str
    started_at: datetime
    command_ended_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    ci: CiRun
    credentials: tuple[Credential, ...]
    task: TaskContext | None = None  # an agent's task (id, agent, user), as recorded

    def ended_at(self, credential: Credential) -> datetime | None:
        """When this credential stopped having a legitimate user.

        The command's credentials are the command's alone, so any use after the command exited
        is someone else's; nhi-invoke keeps using its entry session for cleanup until the
        invocation finishes. A crash leaves only the closing event a later `revoke` wrote.
        """
        if credential.purpose == "child" and self.command_ended_at is not None:
            return self.command_ended_at
        return self.finished_at or credential.closed_at


@dataclass(frozen=True)
class AwsIdentity:
    """What a CloudTrail record says about the credential that signed it."""

    identity_type: str | None
    access_key_id: str | None
    issuer_arn: str | None  # sessionContext.sessionIssuer.arn: the role of an AssumedRole
    source_identity: str | None
    # On AssumeRole* events: the role asked for and the session the response created.
    requested_role_arn: str | None = None
    minted_key: str | None = None


@dataclass(frozen=True)
class GcpIdentity:
    """What a Cloud Audit Logs entry says about its caller."""

    principal_email: str | None
    principal_subject: str | None
    delegation_subjects: tuple[str, ...]  # serviceAccountDelegationInfo[].principalSubject
    request_reason: str | None


@dataclass(frozen=True)
class VaultIdentity:
    """What a Vault/OpenBao audit entry says about the token (accessor plain or HMAC'd)."""

    accessor: str | None
    display_name: str | None
    role: str | None  # auth.metadata.role
    minted_accessor: str | None = None  # a login's response: the token it created


@dataclass(frozen=True)
class AzureIdentity:
    """What an Entra ID sign-in says about the client and the token it was issued."""

    app_id: str | None  # the client id
    service_principal_id: str | None
    correlation_id: str | None  # the client's `client-request-id`
    token_id: str | None  # uniqueTokenIdentifier: the issued token's `uti`
    federated_credential_id: str | None = None
    ip_address: str | None = None


Identity = AwsIdentity | GcpIdentity | VaultIdentity | AzureIdentity


@dataclass(frozen=True)
class LogEvent:
    """One call from a cloud's log, reduced to what attribution and the report need."""

    source: str  # cloudtrail, gcp, vault, azure
    event_id: str
    event_time: datetime
    event_name: str
    service: str | None
    resource: str | None
    error_code: str | None
    principal: str | None
    identity: Identity
    # CloudTrail records whole seconds: a window edge is compared at that precision.
    whole_seconds: bool = False


@dataclass(frozen=True)
class TracedEvent:
    """A log event and the invocation it belongs to, or why it belongs to none."""

    event: LogEvent
    invocation_id: str | None
    match: str | None  # how it was tied: access-key, session-name, source-identity, ...
    ambiguous: tuple[str, ...] = ()
    after_end: bool = False
    unattributed: bool = False  # a managed identity, but no ledger knows this session
    note: str | None = None


@dataclass(frozen=True)
class Window:
    """--since/--until; either side open."""

    since: datetime | None = None
    until: datetime | None = None

    def holds(self, moment: datetime) -> bool:
        return (self.since is None or moment >= self.since) and (
            self.until is None or moment <= self.until
        )


@dataclass(frozen=True)
class Focus:
    """At most one of --invocation, --access-key-id, --event-id, --principal, --task."""

    invocation_id: str | None = None
    access_key_id: str | None = None
    event_id: str | None = None
    principal: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class VaultHashing:
    """How to compute the HMAC of an accessor: the audit device's `sys/audit-hash`."""

    address: str
    token: str = field(repr=False)
    device: str = "file"


@dataclass(frozen=True)
class TraceInput:
    """Everything `audit trace` was asked, after parsing."""

    ledgers: tuple[str, ...]
    logs: tuple[tuple[str, str], ...]  # (source name, path)
    window: Window = Window()
    focus: Focus = Focus()
    vault_hashing: VaultHashing | None = None


@dataclass(frozen=True)
class SourceStats:
    """How much of one kind of log was read."""

    source: str
    files: int = 0
    events: int = 0


@dataclass(frozen=True)
class TraceReport:
    events: tuple[TracedEvent, ...]
    invocations: tuple[Invocation, ...]
    problems: tuple[Problem, ...]
    stats: tuple[SourceStats, ...]
    ledgers: tuple[str, ...]


def moment_of(text: object) -> datetime | None:
    """An ISO 8601 time from a log or ledger field; None when it is missing or not one."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None

"""Ties each log event to the one invocation that made it, exactly where the cloud allows it,
and says so when it cannot: never a guess.

AWS: the access key id that signed the call (unique to one session), the key a role assumption
returned, the SourceIdentity a chained session carries into every hop, the assumed-role ARN
within the session's lifetime when a record has no key, and the keys of sessions the command
itself created with AssumeRole. GCP: the request reason on the token calls; otherwise the
service account, the federated principal it acted for, and the token's validity window, with
every invocation whose window holds the event listed when there is more than one. Vault: the
token accessor, plain or HMAC'd. Azure: the token's unique identifier (`uti`), else the
invocation's client-request-id, which Entra keeps as the sign-in's correlation id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nhi_invoke.audit.trace.model import (
    AwsIdentity,
    AzureIdentity,
    Credential,
    GcpIdentity,
    Invocation,
    LogEvent,
    TracedEvent,
    VaultIdentity,
)
from nhi_invoke.audit.trace.sources import lower, vault_role_name

# The Vault broker revokes the command's token with the token itself, after the command.
REVOKE_SELF = "auth/token/revoke-self"
LEDGER_PRECISION = timedelta(milliseconds=1)  # the ledger writes times to the millisecond


@dataclass(frozen=True)
class Held:
    """A credential and the invocation that held it."""

    invocation: Invocation
    credential: Credential


@dataclass
class Index:
    """The ledgers' credentials, keyed by every identifier a log can name them by."""

    keys: dict[str, Held] = field(default_factory=dict)
    sessions: dict[str, list[Held]] = field(default_factory=dict)
    source_identities: dict[str, Held] = field(default_factory=dict)
    aws_roles: set[str] = field(default_factory=set)
    reasons: dict[str, Invocation] = field(default_factory=dict)
    service_accounts: dict[str, list[Held]] = field(default_factory=dict)
    federated: dict[str, list[Held]] = field(default_factory=dict)
    accessors: dict[str, Held] = field(default_factory=dict)
    hashed: bool = False  # accessors' HMACs were computed (sys/audit-hash)
    vault_roles: set[tuple[str, str]] = field(default_factory=set)
    token_ids: dict[str, Held] = field(default_factory=dict)
    correlations: dict[str, Held] = field(default_factory=dict)
    azure_apps: set[str] = field(default_factory=set)


def index(invocations: Iterable[Invocation], vault_hashes: Mapping[str, str]) -> Index:
    found = Index()
    for invocation in invocations:
        for credential in invocation.credentials:
            held = Held(invocation, credential)
            if credential.cloud == "aws":
                if credential.access_key_id:
                    found.keys[credential.access_key_id] = held
                found.sessions.setdefault(credential.principal, []).append(held)
                if credential.source_identity and credential.purpose == "child":
                    found.source_identities[credential.source_identity] = held
                if credential.role_arn:
                    found.aws_roles.add(credential.role_arn)
            elif credential.cloud == "gcp":
                if credential.request_reason:
                    found.reasons[credential.request_reason] = invocation
                target = (
                    found.federated if credential.kind == "federated" else (found.service_accounts)
                )
                target.setdefault(credential.principal, []).append(held)
            elif credential.cloud == "vault" and credential.accessor:
                found.accessors[credential.accessor] = held
                if credential.accessor in vault_hashes:
                    found.accessors[vault_hashes[credential.accessor]] = held
                    found.hashed = True
                if (named := vault_role_name(credential.principal)) is not None:
                    found.vault_roles.add(named)
            elif credential.cloud == "azure":
                _index_azure(found, held)
    return found


def _index_azure(found: Index, held: Held) -> None:
    credential = held.credential
    if credential.token_id:
        found.token_ids[credential.token_id] = held
    if (correlation := lower(credential.client_request_id)) is not None:
        found.correlations.setdefault(correlation, held)
    found.azure_apps.update(
        filter(None, [lower(credential.principal), lower(credential.principal_id)])
    )


def is_hmac(accessor: str | None) -> bool:
    """An accessor as an audit device writes it by default: `hmac-sha256:<hex>`."""
    return accessor is not None and accessor.startswith("hmac-sha256:")


def _floor(moment: datetime, event: LogEvent) -> datetime:
    """A window edge at the precision the log records (CloudTrail: whole seconds)."""
    return moment.replace(microsecond=0) if event.whole_seconds else moment


def after_end(event: LogEvent, held: Held) -> bool:
    end = held.invocation.ended_at(held.credential)
    return end is not None and event.event_time > _floor(end, event)


def within(event: LogEvent, held: Held) -> bool:
    """Inside the credential's validity: from its invocation's start to its expiry."""
    start = _floor(held.invocation.started_at, event)
    return start <= event.event_time <= _floor(held.credential.expires_at, event)


def attribute(
    events: Sequence[LogEvent], invocations: Sequence[Invocation], vault_hashes: Mapping[str, str]
) -> list[TracedEvent]:
    """Every event that an invocation made, or that a managed identity made outside them all."""
    found = index(invocations, vault_hashes)
    derived = derived_keys(events, found)
    traced = []
    for event in events:
        result: TracedEvent | None
        if isinstance(event.identity, AwsIdentity):
            result = _aws(event, event.identity, found, derived)
        elif isinstance(event.identity, GcpIdentity):
            result = _gcp(event, event.identity, found)
        elif isinstance(event.identity, AzureIdentity):
            result = _azure(event, event.identity, found)
        else:
            result = _vault(event, event.identity, found)
        if result is not None:
            traced.append(result)
    traced.sort(key=lambda t: (t.event.event_time, t.event.source, t.event.event_id))
    return traced


def derived_keys(events: Sequence[LogEvent], found: Index) -> dict[str, Held]:
    """Keys of sessions an invocation's own credentials created with AssumeRole (transitively)."""
    derived: dict[str, Held] = {}
    assumptions = [
        e.identity
        for e in sorted(events, key=lambda e: e.event_time)
        if isinstance(e.identity, AwsIdentity)
        and e.identity.minted_key
        and e.identity.access_key_id
    ]
    changed = True
    while changed:
        changed = False
        for identity in assumptions:
            key, minted = identity.access_key_id or "", identity.minted_key or ""
            caller = found.keys.get(key) or derived.get(key)
            if caller is None or minted in found.keys:
                continue
            if minted not in derived:
                derived[minted] = caller
                changed = True
    return derived


def _traced(event: LogEvent, held: Held, match: str, note: str | None = None) -> TracedEvent:
    return TracedEvent(
        event, held.invocation.invocation_id, match, after_end=after_end(event, held), note=note
    )


def _aws(
    event: LogEvent, identity: AwsIdentity, found: Index, derived: Mapping[str, Held]
) -> TracedEvent | None:
    key = identity.access_key_id
    if key and key in found.keys:
        return _traced(event, found.keys[key], "access-key")
    if identity.minted_key and identity.minted_key in found.keys:
        return _traced(event, found.keys[identity.minted_key], "minted")
    if identity.source_identity and identity.source_identity in found.source_identities:
        return _traced(event, found.source_identities[identity.source_identity], "source-identity")
    if not key and event.principal in found.sessions:
        for held in found.sessions[event.principal]:
            if within(event, held):
                return _traced(event, held, "session-name")
    if key and key in derived:
        return _traced(event, derived[key], "assume-role", "a session the command assumed itself")
    if identity.issuer_arn in found.aws_roles or identity.requested_role_arn in found.aws_roles:
        note = None
        if event.principal in found.sessions:
            note = "the session name of an invocation, but not its access key"
        return TracedEvent(event, None, None, unattributed=True, note=note)
    return None


def _gcp(event: LogEvent, identity: GcpIdentity, found: Index) -> TracedEvent | None:
    if identity.request_reason and identity.request_reason in found.reasons:
        invocation = found.reasons[identity.request_reason]
        late = invocation.finished_at is not None and event.event_time > invocation.finished_at
        return TracedEvent(event, invocation.invocation_id, "request-reason", after_end=late)
    managed = identity.principal_email in found.service_accounts or (
        identity.principal_email is None and identity.principal_subject in found.federated
    )
    if not managed:
        return None
    if identity.principal_email is not None:
        if not identity.delegation_subjects:
            return TracedEvent(
                event,
                None,
                None,
                unattributed=True,
                note="no serviceAccountDelegationInfo: not an impersonation by nhi-invoke",
            )
        holders = [
            held
            for held in found.service_accounts[identity.principal_email]
            if held.credential.federated_principal in identity.delegation_subjects
        ]
    else:
        holders = list(found.federated[str(identity.principal_subject)])
    candidates = [held for held in holders if within(event, held)]
    invocation_ids = tuple(dict.fromkeys(h.invocation.invocation_id for h in candidates))
    if len(invocation_ids) == 1:
        return _traced(event, candidates[0], "gcp-window")
    if invocation_ids:
        # Overlapping windows: each of these invocations could have made the call.
        late = all(after_end(event, held) for held in candidates)
        return TracedEvent(event, None, "gcp-window", ambiguous=invocation_ids, after_end=late)
    return TracedEvent(event, None, None, unattributed=True)


def _vault(event: LogEvent, identity: VaultIdentity, found: Index) -> TracedEvent | None:
    # A login's response names the token it created (in `auth` as well): that is the mint.
    if identity.minted_accessor and identity.minted_accessor in found.accessors:
        return _traced(event, found.accessors[identity.minted_accessor], "minted")
    if identity.accessor and identity.accessor in found.accessors:
        held = found.accessors[identity.accessor]
        finished = held.invocation.finished_at
        # The ledger's times are whole milliseconds, Vault's are finer: a revocation in the
        # millisecond the ledger says the invocation finished is within it.
        if (
            event.resource == REVOKE_SELF
            and finished is not None
            and event.event_time < finished + LEDGER_PRECISION
        ):
            # The broker ends the command's token with the token itself, after the command.
            note = "nhi-invoke's revocation at the end of the invocation"
            return TracedEvent(event, held.invocation.invocation_id, "accessor", note=note)
        return _traced(event, held, "accessor")
    if is_hmac(identity.accessor) and not found.hashed:
        return None  # an HMAC'd accessor with no hashes to compare: nothing can be said
    display = identity.display_name or ""
    for mount, role in found.vault_roles:
        # A token of the same auth role: Vault names it "<mount>-<user claim>".
        if identity.role == role and display.startswith(mount.strip("/").replace("/", "-") + "-"):
            return TracedEvent(event, None, None, unattributed=True)
    return None


def _azure(event: LogEvent, identity: AzureIdentity, found: Index) -> TracedEvent | None:
    # Entra's own identifier of the token it issued: exact, one token.
    if identity.token_id and identity.token_id in found.token_ids:
        return _traced(event, found.token_ids[identity.token_id], "token-id")
    # The header nhi-invoke sends on every exchange of the invocation (a GUID derived from its
    # id). A sign-in with it after the command ended was not nhi-invoke's: after_end says so.
    correlation = lower(identity.correlation_id)
    if correlation is not None and correlation in found.correlations:
        return _traced(event, found.correlations[correlation], "client-request-id")
    if {lower(identity.app_id), lower(identity.service_principal_id)} & found.azure_apps:
        note = "a sign-in of the app without an invocation's client-request-id"
        return TracedEvent(event, None, None, unattributed=True, note=note)
    return None

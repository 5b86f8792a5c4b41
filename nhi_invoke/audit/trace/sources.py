"""One reader per kind of cloud log, behind one interface.

A reader turns its files into `LogEvent`s, keeping only the events the ledgers make relevant
(`Needles`): scanning is DuckDB's job, deciding is `attribution`'s. A new source (Azure's
sign-in logs were the last) is one module with a `READER` and one line in `SOURCES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from nhi_invoke.audit.trace.duck import Engine
from nhi_invoke.audit.trace.files import LogFile
from nhi_invoke.audit.trace.model import Invocation, LogEvent, Problem, SourceStats

# option name -> module holding its READER; loaded only when that option is given.
SOURCES = {
    "cloudtrail": "nhi_invoke.audit.trace.cloudtrail",
    "gcp": "nhi_invoke.audit.trace.gcp_audit",
    "vault": "nhi_invoke.audit.trace.vault_audit",
    "azure": "nhi_invoke.audit.trace.entra_signins",
}


@dataclass(frozen=True)
class Needles:
    """The identities the ledgers name: what makes a log event worth keeping."""

    aws_keys: tuple[str, ...] = ()
    aws_source_identities: tuple[str, ...] = ()
    aws_sessions: tuple[str, ...] = ()  # assumed-role ARNs (role and session name)
    aws_roles: tuple[str, ...] = ()  # role ARNs nhi-invoke issued sessions of
    gcp_principals: tuple[str, ...] = ()  # service accounts and federated principals
    gcp_reasons: tuple[str, ...] = ()
    vault_accessors: tuple[str, ...] = ()  # plain, and their HMACs where computed
    vault_roles: tuple[str, ...] = ()
    azure_correlations: tuple[str, ...] = ()  # client-request-ids, lower case
    azure_token_ids: tuple[str, ...] = ()  # the tokens' `uti`
    azure_apps: tuple[str, ...] = ()  # client ids and service principal object ids, lower case
    # Set for a second CloudTrail pass that only looks for sessions derived by AssumeRole.
    derived_only: bool = False


@dataclass(frozen=True)
class SourceRead:
    events: tuple[LogEvent, ...]
    problems: tuple[Problem, ...]
    stats: SourceStats


class LogReader(Protocol):
    """Reads one kind of cloud log."""

    name: str
    suffixes: tuple[str, ...]  # file names picked up when a directory is given

    def read(self, engine: Engine, files: Sequence[LogFile], needles: Needles) -> SourceRead:
        """The relevant events of these files, and the files it could not use."""
        ...


def reader(name: str) -> LogReader:
    module = importlib.import_module(SOURCES[name])
    found: LogReader = module.READER
    return found


def vault_role_name(principal: str) -> tuple[str, str] | None:
    """`vault:<mount>/role/<role>` (as the Vault broker records it) -> (mount, role)."""
    if not principal.startswith("vault:") or "/role/" not in principal:
        return None
    mount, _, role = principal.removeprefix("vault:").rpartition("/role/")
    return (mount, role) if mount and role else None


def needles(invocations: Iterable[Invocation], vault_hashes: Iterable[str] = ()) -> Needles:
    """What to look for in the logs, from the invocations' credentials."""
    keys: set[str] = set()
    identities: set[str] = set()
    sessions: set[str] = set()
    roles: set[str] = set()
    gcp: set[str] = set()
    reasons: set[str] = set()
    accessors: set[str] = set(vault_hashes)
    vault_roles: set[str] = set()
    correlations: set[str] = set()
    token_ids: set[str] = set()
    apps: set[str] = set()
    for invocation in invocations:
        for credential in invocation.credentials:
            if credential.cloud == "aws":
                keys.update(filter(None, [credential.access_key_id]))
                identities.update(filter(None, [credential.source_identity]))
                sessions.add(credential.principal)
                roles.update(filter(None, [credential.role_arn]))
            elif credential.cloud == "gcp":
                gcp.add(credential.principal)
                gcp.update(filter(None, [credential.federated_principal]))
                reasons.update(filter(None, [credential.request_reason]))
            elif credential.cloud == "vault":
                accessors.update(filter(None, [credential.accessor]))
                if (named := vault_role_name(credential.principal)) is not None:
                    vault_roles.add(named[1])
            elif credential.cloud == "azure":
                correlations.update(filter(None, [lower(credential.client_request_id)]))
                token_ids.update(filter(None, [credential.token_id]))
                apps.update(
                    filter(None, [lower(credential.principal), lower(credential.principal_id)])
                )
    return Needles(
        aws_keys=tuple(sorted(keys)),
        aws_source_identities=tuple(sorted(identities)),
        aws_sessions=tuple(sorted(sessions)),
        aws_roles=tuple(sorted(roles)),
        gcp_principals=tuple(sorted(gcp)),
        gcp_reasons=tuple(sorted(reasons)),
        vault_accessors=tuple(sorted(accessors)),
        vault_roles=tuple(sorted(vault_roles)),
        azure_correlations=tuple(sorted(correlations)),
        azure_token_ids=tuple(sorted(token_ids)),
        azure_apps=tuple(sorted(apps)),
    )


def lower(text: str | None) -> str | None:
    """GUIDs (client ids, object ids, correlation ids) compare without case."""
    return text.lower() if text else None

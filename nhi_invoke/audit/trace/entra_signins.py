"""Microsoft Entra ID sign-in logs, as people export them:

- Microsoft Graph `GET /auditLogs/signIns` pages (`{"@odata.context": ..., "value": [signIn,
  ...]}`, one page or several concatenated per file; service-principal and managed-identity
  sign-ins are in the beta endpoint, filtered on `signInEventTypes`), or a JSON array of signIn;
- Azure Monitor diagnostic-setting exports of the `ServicePrincipalSignInLogs` and
  `ManagedIdentitySignInLogs` categories (Log Analytics tables `AADServicePrincipalSignInLogs`,
  `AADManagedIdentitySignInLogs`): one record per line as a storage account receives them
  (`time`, `category`, `properties` holding the signIn), or `{"records": [...]}` as an event
  hub delivers them.

A sign-in is a token issuance, not a call with the token: Entra logs the former only.

Fields: https://learn.microsoft.com/graph/api/resources/signin?view=graph-rest-beta and
https://learn.microsoft.com/azure/azure-monitor/platform/resource-logs-schema
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from nhi_invoke.audit.trace.duck import Engine
from nhi_invoke.audit.trace.files import LogFile, is_empty
from nhi_invoke.audit.trace.model import AzureIdentity, LogEvent, Problem, SourceStats, moment_of
from nhi_invoke.audit.trace.sources import Needles, SourceRead

# Only what attribution and the report need, from a Graph signIn.
SIGN_IN = {
    "id": "VARCHAR",
    "createdDateTime": "VARCHAR",
    "appId": "VARCHAR",
    "appDisplayName": "VARCHAR",
    "servicePrincipalId": "VARCHAR",
    "correlationId": "VARCHAR",
    "uniqueTokenIdentifier": "VARCHAR",
    "resourceId": "VARCHAR",
    "resourceDisplayName": "VARCHAR",
    "ipAddress": "VARCHAR",
    "federatedCredentialId": "VARCHAR",
    "signInEventTypes": ["VARCHAR"],
    "status": {"errorCode": "BIGINT", "failureReason": "VARCHAR"},
}
# A Graph signIn and an Azure Monitor record (whose `properties` is the signIn) in one shape:
# each file's rows are one or the other, and the query reads whichever is there.
RECORD = SIGN_IN | {"time": "VARCHAR", "category": "VARCHAR", "properties": SIGN_IN}
GRAPH_PAGE = json.dumps({"value": [RECORD]})
EVENT_HUB = json.dumps({"records": [RECORD]})

# Azure Monitor categories of sign-ins (the Log Analytics tables add `AAD`): other categories
# of the same export (AuditLogs, ...) are not sign-ins and are not counted.
SIGN_IN_CATEGORY = "%SignInLogs"

KINDS = {
    "servicePrincipal": "service principal sign-in",
    "managedIdentity": "managed identity sign-in",
    "ServicePrincipalSignInLogs": "service principal sign-in",
    "ManagedIdentitySignInLogs": "managed identity sign-in",
}


def _field(name: str) -> str:
    return f"coalesce(r.properties.{name}, r.{name})"


def _over(rows: str) -> str:
    # Only this module's constants are spliced in: every value is a query parameter.
    return f"""
        WITH records AS ({rows}),
        signins AS (
            SELECT filename, r,
                {_field("id")} AS id,
                coalesce(r.properties.createdDateTime, r.createdDateTime, r.time) AS signed_at,
                lower({_field("correlationId")}) AS correlation,
                {_field("uniqueTokenIdentifier")} AS token_id,
                lower({_field("appId")}) AS app,
                lower({_field("servicePrincipalId")}) AS principal
            FROM records
        )
        SELECT filename,
            count(*) FILTER (WHERE id IS NOT NULL AND signed_at IS NOT NULL
                AND (r.category IS NULL OR r.category LIKE '{SIGN_IN_CATEGORY}')),
            list(r) FILTER (WHERE
                correlation IN (SELECT unnest($correlations::VARCHAR[]))
                OR token_id IN (SELECT unnest($tokens::VARCHAR[]))
                OR app IN (SELECT unnest($apps::VARCHAR[]))
                OR principal IN (SELECT unnest($apps::VARCHAR[])))
        FROM signins GROUP BY filename
    """


def _page_query(relation: str) -> str:
    return _over(
        f"SELECT filename, unnest(from_json(json, '{GRAPH_PAGE}').value) AS r FROM {relation}"
    )


def _hub_query(relation: str) -> str:
    return _over(
        f"SELECT filename, unnest(from_json(json, '{EVENT_HUB}').records) AS r FROM {relation}"
    )


def _record_query(relation: str) -> str:
    return _over(f"SELECT filename, from_json(json, '{json.dumps(RECORD)}') AS r FROM {relation}")


_FIRST_KEY = re.compile(rb'^\s*\{\s*"([^"]{1,64})"\s*:')


def classify(log: LogFile) -> str | None:
    """`page` (Graph), `hub` (event hub), `lines` (storage account, or a JSON array), else None."""
    head = log.head.lstrip(b"\xef\xbb\xbf")
    if log.first_char == "[":
        return "array"
    first = _FIRST_KEY.match(head)
    if first is None:
        return None
    key = first.group(1)
    if key == b"records":
        return "hub"
    if key == b"value" or key.startswith(b"@odata."):
        return "page"
    return "lines"


class EntraSignInReader:
    name = "azure"
    suffixes = (".json", ".jsonl", ".json.gz", ".jsonl.gz")

    def read(self, engine: Engine, files: Sequence[LogFile], needles: Needles) -> SourceRead:
        problems: list[Problem] = []
        kinds: dict[str, list[LogFile]] = {"page": [], "hub": [], "lines": [], "array": []}
        for log in files:
            kind = classify(log)
            if kind is None:
                problems.append(_not_signins(log.path))
            else:
                kinds[kind].append(log)
        params = {
            "correlations": list(needles.azure_correlations),
            "tokens": list(needles.azure_token_ids),
            "apps": list(needles.azure_apps),
        }
        # Graph pages are pretty-printed and may be concatenated: `unstructured` reads any
        # sequence of JSON values; storage-account exports are JSON Lines.
        plans = (
            ("page", _page_query, "unstructured", False),
            ("hub", _hub_query, "unstructured", False),
            ("lines", _record_query, "newline_delimited", True),
            ("array", _record_query, "array", False),
        )
        events: dict[str, LogEvent] = {}
        scanned = used = 0
        for kind, query, json_format, salvage in plans:
            if not kinds[kind]:
                continue
            scan = engine.scan(kinds[kind], json_format, query, params, salvage_lines=salvage)
            problems += scan.problems
            counted: dict[str, int] = {}
            for filename, count, hits in scan.rows:
                counted[filename] = count  # sign-ins that have an id and a time
                for hit in hits or ():
                    if (event := _event(hit)) is not None:
                        events.setdefault(event.event_id, event)
            failed = {p.path for p in scan.problems if p.message.endswith("skipped")}
            for log in kinds[kind]:
                if log.path in failed:
                    continue
                scanned += counted.get(log.path, 0)
                if not counted.get(log.path) and not is_empty(log):
                    problems.append(_not_signins(log.path))
                else:
                    used += 1
        return SourceRead(
            tuple(events.values()), tuple(problems), SourceStats(self.name, used, scanned)
        )


def _not_signins(path: str) -> Problem:
    return Problem(
        path,
        "is not an Entra ID sign-in log; skipped",
        "pass Microsoft Graph auditLogs/signIns pages or an Azure Monitor export of the "
        "ServicePrincipalSignInLogs/ManagedIdentitySignInLogs categories",
    )


def _event(record: dict[str, Any]) -> LogEvent | None:
    sign_in = record.get("properties") or record  # an Azure Monitor record, or a Graph signIn
    moment = moment_of(sign_in.get("createdDateTime")) or moment_of(record.get("time"))
    event_id = sign_in.get("id")
    if moment is None or not event_id:
        return None
    status = sign_in.get("status") or {}
    code = status.get("errorCode")
    types = [t for t in sign_in.get("signInEventTypes") or () if t]
    # An export's category is its own classification; a Graph signIn has its event types.
    category = str(record.get("category") or "").removeprefix("AAD")
    kind = KINDS.get(category or (types[0] if types else ""))
    identity = AzureIdentity(
        app_id=sign_in.get("appId") or None,
        service_principal_id=sign_in.get("servicePrincipalId") or None,
        correlation_id=sign_in.get("correlationId") or record.get("correlationId") or None,
        token_id=sign_in.get("uniqueTokenIdentifier") or None,
        federated_credential_id=sign_in.get("federatedCredentialId") or None,
        ip_address=sign_in.get("ipAddress") or None,
    )
    return LogEvent(
        source="azure",
        event_id=str(event_id),
        event_time=moment,
        event_name=kind or "sign-in",
        service="Entra ID",
        resource=sign_in.get("resourceDisplayName") or sign_in.get("resourceId"),
        error_code=f"AADSTS{code}" if code else None,
        principal=identity.app_id or identity.service_principal_id,
        identity=identity,
        # Graph gives whole seconds; a window edge is compared at the precision given.
        whole_seconds=moment.microsecond == 0,
    )


READER = EntraSignInReader()

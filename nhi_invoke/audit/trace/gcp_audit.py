"""GCP Cloud Audit Logs entries, as `gcloud logging read --format=json` prints them (a JSON
array of LogEntry) or as a log sink writes them (one LogEntry per line).

Entry fields: https://cloud.google.com/logging/docs/reference/audit/auditlog/rest/Shared.Types/AuditLog
and, for impersonated service accounts,
https://cloud.google.com/iam/docs/audit-logging/examples-workload-identity
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nhi_invoke.audit.trace.duck import Engine
from nhi_invoke.audit.trace.files import LogFile, is_empty
from nhi_invoke.audit.trace.model import GcpIdentity, LogEvent, Problem, SourceStats
from nhi_invoke.audit.trace.sources import Needles, SourceRead

ENTRY = json.dumps(
    {
        "insertId": "VARCHAR",
        "timestamp": "VARCHAR",
        "protoPayload": {
            "serviceName": "VARCHAR",
            "methodName": "VARCHAR",
            "resourceName": "VARCHAR",
            "status": {"code": "BIGINT"},
            "authenticationInfo": {
                "principalEmail": "VARCHAR",
                "principalSubject": "VARCHAR",
                "serviceAccountDelegationInfo": [{"principalSubject": "VARCHAR"}],
            },
            "requestMetadata": {"requestAttributes": {"reason": "VARCHAR"}},
        },
    }
)

# google.rpc.Code, the `status.code` of an audit entry.
STATUS_CODES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


def _query(relation: str) -> str:
    auth = "e.protoPayload.authenticationInfo"
    # Only this module's constants are spliced in: every value is a query parameter.
    return f"""
        WITH entries AS (
            SELECT filename, from_json(json, '{ENTRY}') AS e FROM {relation}
        )
        SELECT filename, count(*) FILTER (WHERE e.insertId IS NOT NULL AND e.timestamp IS NOT NULL),
            list(e) FILTER (WHERE
            {auth}.principalEmail IN (SELECT unnest($principals::VARCHAR[]))
            OR {auth}.principalSubject IN (SELECT unnest($principals::VARCHAR[]))
            OR e.protoPayload.requestMetadata.requestAttributes.reason
               IN (SELECT unnest($reasons::VARCHAR[])))
        FROM entries GROUP BY filename
    """


class GcpAuditReader:
    name = "gcp"
    suffixes = (".json", ".jsonl", ".json.gz", ".jsonl.gz")

    def read(self, engine: Engine, files: Sequence[LogFile], needles: Needles) -> SourceRead:
        problems: list[Problem] = []
        formats: dict[str, list[LogFile]] = {"array": [], "newline_delimited": []}
        for log in files:
            if log.first_char == "[":
                formats["array"].append(log)
            elif log.first_char == "{":
                formats["newline_delimited"].append(log)
            else:
                problems.append(_not_gcp(log.path))
        params = {
            "principals": list(needles.gcp_principals),
            "reasons": list(needles.gcp_reasons),
        }
        events: list[LogEvent] = []
        scanned = used = 0
        for json_format, group in formats.items():
            if not group:
                continue
            scan = engine.scan(
                group, json_format, _query, params, salvage_lines=json_format != "array"
            )
            problems += scan.problems
            counted: dict[str, int] = {}
            for filename, count, hits in scan.rows:
                counted[filename] = count  # entries that have an insertId and a timestamp
                events += [e for hit in hits or () if (e := _event(hit)) is not None]
            failed = {p.path for p in scan.problems if p.message.endswith("skipped")}
            for log in group:
                if log.path in failed:
                    continue
                scanned += counted.get(log.path, 0)
                # JSON of another kind reads as rows without an insertId: say so, rather than
                # report a quiet zero.
                if not counted.get(log.path) and not is_empty(log):
                    problems.append(_not_gcp(log.path))
                else:
                    used += 1
        return SourceRead(tuple(events), tuple(problems), SourceStats(self.name, used, scanned))


def _not_gcp(path: str) -> Problem:
    return Problem(
        path,
        "is not a GCP audit log; skipped",
        "pass the output of 'gcloud logging read --format=json' or a log sink's JSON lines",
    )


def _event(entry: dict[str, Any]) -> LogEvent | None:
    payload = entry.get("protoPayload") or {}
    auth = payload.get("authenticationInfo") or {}
    try:
        moment = datetime.fromisoformat(str(entry.get("timestamp")))
    except ValueError:
        return None
    if not entry.get("insertId"):
        return None
    code = (payload.get("status") or {}).get("code")
    delegation = tuple(
        d["principalSubject"]
        for d in auth.get("serviceAccountDelegationInfo") or ()
        if d and d.get("principalSubject")
    )
    identity = GcpIdentity(
        principal_email=auth.get("principalEmail") or None,
        principal_subject=auth.get("principalSubject") or None,
        delegation_subjects=delegation,
        request_reason=((payload.get("requestMetadata") or {}).get("requestAttributes") or {}).get(
            "reason"
        )
        or None,
    )
    return LogEvent(
        source="gcp",
        event_id=str(entry["insertId"]),
        event_time=moment,
        event_name=str(payload.get("methodName") or ""),
        service=payload.get("serviceName"),
        resource=payload.get("resourceName"),
        error_code=STATUS_CODES.get(code, str(code)) if code else None,
        principal=identity.principal_email or identity.principal_subject,
        identity=identity,
    )


READER = GcpAuditReader()

"""CloudTrail, as delivered to S3 (`{"Records": [...]}`, `.json` or `.json.gz`, in a tree of
them) and as `aws cloudtrail lookup-events` prints it (`{"Events": [...]}`, each event's record
a JSON string in `CloudTrailEvent`).

Record fields: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from nhi_invoke.audit.trace.duck import Engine
from nhi_invoke.audit.trace.files import LogFile, is_empty
from nhi_invoke.audit.trace.model import AwsIdentity, LogEvent, Problem, SourceStats, moment_of
from nhi_invoke.audit.trace.sources import Needles, SourceRead

ASSUME_ROLE_EVENTS = ("AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML")

# Only what attribution and the report need: DuckDB skips the rest of every record (a
# session token in `responseElements` is never read).
RECORD = {
    "eventID": "VARCHAR",
    "eventTime": "VARCHAR",
    "eventSource": "VARCHAR",
    "eventName": "VARCHAR",
    "errorCode": "VARCHAR",
    "userIdentity": {
        "type": "VARCHAR",
        "arn": "VARCHAR",
        "principalId": "VARCHAR",
        "accessKeyId": "VARCHAR",
        "sessionContext": {"sessionIssuer": {"arn": "VARCHAR"}, "sourceIdentity": "VARCHAR"},
    },
    "requestParameters": {"roleArn": "VARCHAR", "roleSessionName": "VARCHAR"},
    "responseElements": {"credentials": {"accessKeyId": "VARCHAR"}},
    "resources": [{"ARN": "VARCHAR"}],
}
S3_FILE = json.dumps({"Records": [RECORD]})
LOOKUP_FILE = json.dumps({"Events": [{"CloudTrailEvent": "VARCHAR"}]})

# Which records are worth returning: a key, identity, session or role the ledgers name, or a
# session minted for a managed role (AssumeRole* of it, or returning a key the ledgers hold).
RELEVANT = """
    r.userIdentity.accessKeyId IN (SELECT unnest($keys::VARCHAR[]))
    OR (NOT $derived_only AND (
        r.userIdentity.sessionContext.sourceIdentity IN (SELECT unnest($identities::VARCHAR[]))
        OR r.userIdentity.arn IN (SELECT unnest($sessions::VARCHAR[]))
        OR r.userIdentity.sessionContext.sessionIssuer.arn IN (SELECT unnest($roles::VARCHAR[]))
        OR (r.eventName IN ('AssumeRole', 'AssumeRoleWithWebIdentity', 'AssumeRoleWithSAML')
            AND (r.requestParameters.roleArn IN (SELECT unnest($roles::VARCHAR[]))
                 OR r.responseElements.credentials.accessKeyId
                    IN (SELECT unnest($keys::VARCHAR[]))))))
"""


def _s3_query(relation: str) -> str:
    # Only this module's constants are spliced in: every value is a query parameter.
    return f"""
        WITH records AS (
            SELECT filename, unnest(from_json(json, '{S3_FILE}').Records) AS r FROM {relation}
        )
        SELECT filename, count(r.eventID), list(r) FILTER (WHERE {RELEVANT})
        FROM records GROUP BY filename
    """


def _lookup_query(relation: str) -> str:
    # Only this module's constants are spliced in: every value is a query parameter.
    return f"""
        WITH events AS (
            SELECT filename, unnest(from_json(json, '{LOOKUP_FILE}').Events) AS e FROM {relation}
        ), records AS (
            SELECT filename, from_json(e.CloudTrailEvent, '{json.dumps(RECORD)}') AS r
            FROM events
        )
        SELECT filename, count(r.eventID), list(r) FILTER (WHERE {RELEVANT})
        FROM records GROUP BY filename
    """


_FIRST_KEY = re.compile(rb'^\s*\{\s*"([^"]{1,64})"\s*:')


def classify(log: LogFile) -> str | None:
    """`s3` for a delivered log file, `lookup` for lookup-events output, else None."""
    head = log.head.lstrip(b"\xef\xbb\xbf")
    first = _FIRST_KEY.match(head)
    if first is not None and first.group(1) == b"Records":
        return "s3"
    if first is not None and first.group(1) == b"Events":
        return "lookup"
    if b'"CloudTrailEvent"' in head and b'"Events"' in head:  # keys reordered (jq)
        return "lookup"
    return None


class CloudTrailReader:
    name = "cloudtrail"
    suffixes = (".json", ".json.gz")

    def read(self, engine: Engine, files: Sequence[LogFile], needles: Needles) -> SourceRead:
        problems: list[Problem] = []
        kinds: dict[str, list[LogFile]] = {"s3": [], "s3-pretty": [], "lookup": []}
        for log in files:
            kind = classify(log)
            if kind is None:
                problems.append(
                    Problem(
                        log.path,
                        "is not a CloudTrail log; skipped",
                        'pass files as CloudTrail delivers them to S3 ({"Records": [...]}) '
                        "or the output of 'aws cloudtrail lookup-events'",
                    )
                )
            elif kind == "s3" and b"\n" in log.head.strip():
                kinds["s3-pretty"].append(log)  # reformatted by hand: not one line
            else:
                kinds[kind].append(log)
        params = {
            "keys": list(needles.aws_keys),
            "identities": list(needles.aws_source_identities),
            "sessions": list(needles.aws_sessions),
            "roles": list(needles.aws_roles),
            "derived_only": needles.derived_only,
        }
        events: list[LogEvent] = []
        scanned, used = 0, 0
        # CloudTrail writes each file as one line: read as JSON Lines, the fastest way DuckDB
        # has (about half the CPU of its format detection), with that as the fallback.
        plans = (
            ("s3", _s3_query, "newline_delimited"),
            ("s3-pretty", _s3_query, "auto"),
            ("lookup", _lookup_query, "auto"),
        )
        for kind, query, json_format in plans:
            if not kinds[kind]:
                continue
            scan = engine.scan(kinds[kind], json_format, query, params, retry_format="auto")
            problems += scan.problems
            counted: dict[str, int] = {}
            for filename, count, hits in scan.rows:
                counted[filename] = count  # records that have an eventID
                scanned += count
                events += [e for hit in hits or () if (e := _event(hit)) is not None]
            failed = {p.path for p in scan.problems}
            for log in kinds[kind]:
                if log.path in failed:
                    continue
                if not counted.get(log.path) and not is_empty(log):
                    problems.append(Problem(log.path, "holds no CloudTrail records; skipped"))
                else:
                    used += 1
        return SourceRead(tuple(events), tuple(problems), SourceStats(self.name, used, scanned))


def _event(record: dict[str, Any]) -> LogEvent | None:
    moment = moment_of(record.get("eventTime"))
    event_id = record.get("eventID")
    if moment is None or not event_id:
        return None
    user = record.get("userIdentity") or {}
    context = user.get("sessionContext") or {}
    request = record.get("requestParameters") or {}
    response = record.get("responseElements") or {}
    arns = [r["ARN"] for r in record.get("resources") or () if r and r.get("ARN")]
    name = str(record.get("eventName") or "")
    identity = AwsIdentity(
        identity_type=user.get("type"),
        access_key_id=user.get("accessKeyId") or None,
        issuer_arn=(context.get("sessionIssuer") or {}).get("arn"),
        source_identity=context.get("sourceIdentity") or None,
        requested_role_arn=request.get("roleArn") if name in ASSUME_ROLE_EVENTS else None,
        minted_key=(response.get("credentials") or {}).get("accessKeyId")
        if name in ASSUME_ROLE_EVENTS
        else None,
    )
    resource = arns[0] + (f" (+{len(arns) - 1})" if len(arns) > 1 else "") if arns else None
    if resource is None and name in ASSUME_ROLE_EVENTS:
        resource = request.get("roleArn")
    return LogEvent(
        source="cloudtrail",
        event_id=str(event_id),
        event_time=moment,
        event_name=name,
        service=record.get("eventSource"),
        resource=resource,
        error_code=record.get("errorCode"),
        principal=user.get("arn") or user.get("principalId"),
        identity=identity,
        whole_seconds=True,
    )


READER = CloudTrailReader()

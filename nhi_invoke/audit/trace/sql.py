"""`audit trace --print-sql`: the same join, for the engine where the logs already live.

- athena: the CloudTrail table as AWS documents it (`cloudtrail_logs`, `eventtime` a string),
  plus `useridentity.sessioncontext.sourceidentity`, which the documented DDL lacks
  (https://docs.aws.amazon.com/athena/latest/ug/create-cloudtrail-table.html);
- cloudtrail-lake: an event data store (`eventtime` a timestamp, `requestparameters` and
  `responseelements` maps; https://docs.aws.amazon.com/awscloudtrail/latest/userguide/query-limitations.html);
- bigquery: Cloud Audit Logs routed to BigQuery (`cloudaudit_googleapis_com_activity` and
  `..._data_access`, `protopayload_auditlog.*`; https://cloud.google.com/logging/docs/export/bigquery).

Each is one SELECT over a small inline table of the ledgers' credentials, with the rules of
`attribution`: exact matches ranked as there, the GCP windows with every candidate listed.
The rows come back in the order the engines' own SQL gives, which DuckDB also runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from nhi_invoke.audit.trace.model import Credential, Invocation, Window
from nhi_invoke.errors import ConfigError, UsageError
from nhi_invoke.figures import plural

DIALECTS = ("athena", "bigquery", "cloudtrail-lake")
DEFAULT_TABLES = {
    "athena": ("cloudtrail_logs",),
    "bigquery": ("cloudaudit_googleapis_com_activity", "cloudaudit_googleapis_com_data_access"),
}
ASSUME_ROLE = "'AssumeRole', 'AssumeRoleWithWebIdentity', 'AssumeRoleWithSAML'"
_TABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")


def print_sql(
    dialect: str, invocations: Sequence[Invocation], window: Window, tables: Sequence[str]
) -> str:
    if dialect not in DIALECTS:
        raise ConfigError(
            f"--print-sql {dialect!r} is not a dialect", f"use one of {', '.join(DIALECTS)}"
        )
    for table in tables:
        if not _TABLE_NAME.fullmatch(table):
            raise ConfigError(
                f"--sql-table {table!r} is not a table name", "use project.dataset.table"
            )
    if dialect == "cloudtrail-lake" and not tables:
        raise UsageError(
            "--print-sql cloudtrail-lake needs the event data store",
            "pass --sql-table with its ID (the last part of its ARN)",
        )
    cloud = "gcp" if dialect == "bigquery" else "aws"
    held = [(i, c) for i in invocations for c in i.credentials if c.cloud == cloud]
    if not held:
        raise ConfigError(
            f"the ledgers hold no {cloud.upper()} credential for --print-sql {dialect}",
            "pass the ledgers of invocations that used this cloud",
        )
    chosen = tuple(tables) or DEFAULT_TABLES[dialect]
    if dialect == "bigquery":
        return _bigquery(held, window, chosen)
    return _trino(dialect, held, window, chosen[0])


def _string(value: str | None, dialect: str) -> str:
    if value is None:
        return "CAST(NULL AS VARCHAR)" if dialect != "bigquery" else "CAST(NULL AS STRING)"
    if dialect == "bigquery":  # GoogleSQL escapes with a backslash
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + value.replace("'", "''") + "'"


def _second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _moment(moment: datetime | None, dialect: str) -> str:
    """A time as the dialect compares it: Athena's eventtime is the ISO string CloudTrail
    wrote (whole seconds), the others are timestamps."""
    if moment is None:
        return "CAST(NULL AS VARCHAR)" if dialect == "athena" else "CAST(NULL AS TIMESTAMP)"
    utc = moment.astimezone(UTC)
    if dialect == "athena":
        return f"'{_second(utc):%Y-%m-%dT%H:%M:%SZ}'"
    if dialect == "cloudtrail-lake":
        return f"TIMESTAMP '{_second(utc):%Y-%m-%d %H:%M:%S}'"
    return f"TIMESTAMP '{utc:%Y-%m-%d %H:%M:%S.%f}+00'"


def _table(name: str, dialect: str) -> str:
    if dialect == "bigquery":
        return f"`{name}`" if "-" in name else name
    if dialect == "athena":
        return ".".join(p if re.fullmatch(r"\w+", p) else f'"{p}"' for p in name.split("."))
    return name  # an event data store ID, dashes and all, as CloudTrail Lake takes it


def _union(rows: Sequence[Sequence[tuple[str, str]]]) -> str:
    """An inline table: the first SELECT names the columns, the others follow it."""
    first, *others = rows
    lines = ["SELECT " + ", ".join(f"{value} AS {name}" for value, name in first)]
    lines += ["UNION ALL SELECT " + ", ".join(value for value, _ in row) for row in others]
    return "\n    ".join(lines)


def _span(
    held: Sequence[tuple[Invocation, Credential]], window: Window
) -> tuple[datetime, datetime]:
    since = window.since or min(i.started_at for i, _ in held)
    until = window.until or max(c.expires_at for _, c in held)
    return since, until


def _trino(
    dialect: str, held: Sequence[tuple[Invocation, Credential]], window: Window, table: str
) -> str:
    if dialect == "athena":
        requested = "json_extract_scalar(requestparameters, '$.roleArn')"
        minted = "json_extract_scalar(responseelements, '$.credentials.accessKeyId')"
    else:
        requested = "element_at(requestparameters, 'roleArn')"
        minted = "json_extract_scalar(element_at(responseelements, 'credentials'), '$.accessKeyId')"
    rows = []
    for invocation, credential in held:
        identity = credential.source_identity if credential.purpose == "child" else None
        rows.append(
            [
                (_string(invocation.invocation_id, dialect), "invocation_id"),
                (_string(credential.access_key_id, dialect), "access_key_id"),
                (_string(credential.principal, dialect), "session_arn"),
                (_string(identity, dialect), "source_identity"),
                (_string(credential.role_arn, dialect), "role_arn"),
                (_moment(invocation.started_at, dialect), "not_before"),
                (_moment(credential.expires_at, dialect), "not_after"),
                (_moment(invocation.ended_at(credential), dialect), "ended_at"),
            ]
        )
    since, until = _span(held, window)
    credentials = _union(rows)
    note = (
        "-- CloudTrail Lake is closed to new customers since 2026-05-31; this is for event data "
        "stores that already exist.\n"
        if dialect == "cloudtrail-lake"
        else "-- Needs useridentity.sessioncontext.sourceidentity (docs/trace.md tells how).\n"
    )
    invocations = plural(len({i.invocation_id for i, _ in held}), "invocation")
    return f"""-- nhi-invoke audit trace: {invocations}, {plural(len(held), "AWS credential")}
{note}WITH credentials AS (
    {credentials}
),
events AS (
    SELECT eventid, eventtime, eventsource, eventname, errorcode,
        useridentity.arn AS principal,
        useridentity.accesskeyid AS access_key_id,
        useridentity.sessioncontext.sessionissuer.arn AS issuer_arn,
        useridentity.sessioncontext.sourceidentity AS source_identity,
        CASE WHEN eventname IN ({ASSUME_ROLE}) THEN {requested} END AS requested_role,
        CASE WHEN eventname IN ({ASSUME_ROLE}) THEN {minted} END AS minted_key
    FROM {_table(table, dialect)}
    WHERE eventtime >= {_moment(since, dialect)} AND eventtime <= {_moment(until, dialect)}
),
relevant AS (
    SELECT * FROM events
    WHERE access_key_id IN (SELECT access_key_id FROM credentials)
        OR minted_key IN (SELECT access_key_id FROM credentials)
        OR source_identity IN (SELECT source_identity FROM credentials)
        OR principal IN (SELECT session_arn FROM credentials)
        OR issuer_arn IN (SELECT role_arn FROM credentials)
        OR requested_role IN (SELECT role_arn FROM credentials)
),
candidates AS (
    SELECT e.*, c.invocation_id, c.ended_at,
        CASE WHEN e.access_key_id = c.access_key_id THEN 1
             WHEN e.minted_key = c.access_key_id THEN 2
             WHEN e.source_identity = c.source_identity THEN 3
             WHEN c.invocation_id IS NOT NULL THEN 4 END AS priority
    FROM relevant AS e LEFT JOIN credentials AS c ON
        e.access_key_id = c.access_key_id
        OR e.minted_key = c.access_key_id
        OR e.source_identity = c.source_identity
        OR (COALESCE(e.access_key_id, '') = '' AND e.principal = c.session_arn
            AND e.eventtime BETWEEN c.not_before AND c.not_after)
),
ranked AS (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY eventid ORDER BY priority) AS pick
    FROM candidates
    WHERE invocation_id IS NOT NULL
        OR issuer_arn IN (SELECT role_arn FROM credentials)
        OR requested_role IN (SELECT role_arn FROM credentials)
)
SELECT eventid AS event_id, eventtime AS event_time, eventsource AS service,
    eventname AS event_name, errorcode AS error_code, principal, access_key_id, invocation_id,
    CASE priority WHEN 1 THEN 'access-key' WHEN 2 THEN 'minted'
        WHEN 3 THEN 'source-identity' WHEN 4 THEN 'session-name' END AS matched_by,
    COALESCE(eventtime > ended_at, false) AS after_end,
    invocation_id IS NULL AS unattributed
FROM ranked
WHERE pick = 1
ORDER BY event_time, event_id
"""


def _bigquery(
    held: Sequence[tuple[Invocation, Credential]], window: Window, tables: Sequence[str]
) -> str:
    rows = []
    reasons = {}
    none = _string(None, "bigquery")
    for invocation, credential in held:
        if credential.request_reason:
            reasons[credential.request_reason] = invocation
        federated = credential.kind == "federated"
        rows.append(
            [
                (_string(invocation.invocation_id, "bigquery"), "invocation_id"),
                (none, "reason"),
                (
                    none if federated else _string(credential.principal, "bigquery"),
                    "principal_email",
                ),
                (
                    _string(None if federated else credential.federated_principal, "bigquery"),
                    "delegate",
                ),
                (
                    _string(credential.principal, "bigquery") if federated else none,
                    "principal_subject",
                ),
                (_moment(invocation.started_at, "bigquery"), "not_before"),
                (_moment(credential.expires_at, "bigquery"), "not_after"),
                (_moment(invocation.ended_at(credential), "bigquery"), "ended_at"),
            ]
        )
    for reason, invocation in reasons.items():
        rows.append(
            [
                (_string(invocation.invocation_id, "bigquery"), "invocation_id"),
                (_string(reason, "bigquery"), "reason"),
                (none, "principal_email"),
                (none, "delegate"),
                (none, "principal_subject"),
                ("CAST(NULL AS TIMESTAMP)", "not_before"),
                ("CAST(NULL AS TIMESTAMP)", "not_after"),
                (_moment(invocation.finished_at, "bigquery"), "ended_at"),
            ]
        )
    since, until = _span(held, window)
    entries = "\n    UNION ALL ".join(
        f"SELECT insertId, timestamp, protopayload_auditlog FROM {_table(t, 'bigquery')}\n"
        f"        WHERE timestamp BETWEEN {_moment(since, 'bigquery')} "
        f"AND {_moment(until, 'bigquery')}"
        for t in tables
    )
    credentials = _union(rows)
    auth = "protopayload_auditlog.authenticationInfo"
    invocations = plural(len({i.invocation_id for i, _ in held}), "invocation")
    return f"""-- nhi-invoke audit trace: {invocations}, {plural(len(held), "GCP credential")}
WITH credentials AS (
    {credentials}
),
entries AS (
    {entries}
),
events AS (
    SELECT insertId AS event_id, timestamp AS event_time,
        protopayload_auditlog.serviceName AS service,
        protopayload_auditlog.methodName AS event_name,
        protopayload_auditlog.resourceName AS resource,
        {auth}.principalEmail AS principal_email,
        {auth}.principalSubject AS principal_subject,
        protopayload_auditlog.requestMetadata.requestAttributes.reason AS reason,
        -- serviceAccountDelegationInfo[].principalSubject, one per line, to compare in a JOIN.
        ARRAY_TO_STRING(ARRAY(SELECT d.principalSubject
            FROM UNNEST({auth}.serviceAccountDelegationInfo) AS d), '\\n') AS delegates
    FROM entries
),
relevant AS (
    SELECT *, COALESCE(reason IN (SELECT reason FROM credentials), false) AS ours
    FROM events
    WHERE principal_email IN (SELECT principal_email FROM credentials)
        OR (principal_email IS NULL
            AND principal_subject IN (SELECT principal_subject FROM credentials))
        OR reason IN (SELECT reason FROM credentials)
),
matched AS (
    SELECT DISTINCT e.event_id, e.event_time, e.service, e.event_name, e.resource,
        COALESCE(e.principal_email, e.principal_subject) AS principal, c.invocation_id,
        CASE WHEN c.reason IS NOT NULL THEN 'request-reason'
             WHEN c.invocation_id IS NOT NULL THEN 'gcp-window' END AS matched_by,
        COALESCE(e.event_time > c.ended_at, false) AS after_end
    FROM relevant AS e LEFT JOIN credentials AS c ON
        (e.ours AND e.reason = c.reason)
        OR (NOT e.ours AND c.reason IS NULL
            AND e.event_time BETWEEN c.not_before AND c.not_after
            AND ((e.principal_email = c.principal_email
                  AND STRPOS(CONCAT('\\n', e.delegates, '\\n'),
                             CONCAT('\\n', c.delegate, '\\n')) > 0)
                 OR (e.principal_email IS NULL AND e.principal_subject = c.principal_subject)))
)
SELECT event_id, event_time, service, event_name, resource, principal, invocation_id,
    matched_by, after_end, invocation_id IS NULL AS unattributed,
    COUNT(invocation_id) OVER (PARTITION BY event_id) AS candidates
FROM matched
ORDER BY event_time, event_id, invocation_id
"""

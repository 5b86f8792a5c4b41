"""DuckDB tables shaped like the engines `--print-sql` writes for, loaded from the same files
`audit trace` reads, so the printed SQL can be run here and its answer compared.

- Athena's `cloudtrail_logs` as AWS documents its DDL (plus `sourceidentity`):
  https://docs.aws.amazon.com/athena/latest/ug/create-cloudtrail-table.html
- a CloudTrail Lake event data store (`eventtime` a timestamp, maps for the parameters):
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/query-limitations.html
- BigQuery's export of Cloud Audit Logs (`protopayload_auditlog`):
  https://cloud.google.com/logging/docs/export/bigquery

DuckDB lacks two Trino functions the printed SQL uses; macros give them Trino's meaning:
`json_extract_scalar` (a JSON path's scalar as text) and `element_at` (a map's value).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

USER_IDENTITY = (
    "STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, "
    "invokedby VARCHAR, accesskeyid VARCHAR, username VARCHAR, sessioncontext STRUCT("
    "attributes STRUCT(mfaauthenticated VARCHAR, creationdate VARCHAR), "
    "sessionissuer STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, "
    "username VARCHAR), sourceidentity VARCHAR))"
)
AUDIT_LOG = (
    "STRUCT(serviceName VARCHAR, methodName VARCHAR, resourceName VARCHAR, "
    "status STRUCT(code BIGINT), authenticationInfo STRUCT(principalEmail VARCHAR, "
    "principalSubject VARCHAR, serviceAccountDelegationInfo STRUCT(principalSubject VARCHAR)[]), "
    "requestMetadata STRUCT(requestAttributes STRUCT(reason VARCHAR)))"
)


def cloudtrail_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every record of delivered CloudTrail files (.json or .json.gz), walking directories."""
    records = []
    for root in paths:
        for path in sorted(root.rglob("*.json*")) if root.is_dir() else [root]:
            if "CloudTrail-Digest" in path.parts:
                continue
            raw = path.read_bytes()
            body = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
            records += body["Records"]
    return records


def _identity(user: dict[str, Any]) -> dict[str, Any]:
    context = user.get("sessionContext") or {}
    issuer = context.get("sessionIssuer") or {}
    attributes = context.get("attributes") or {}
    return {
        "type": user.get("type"),
        "principalid": user.get("principalId"),
        "arn": user.get("arn"),
        "accountid": user.get("accountId"),
        "invokedby": user.get("invokedBy"),
        "accesskeyid": user.get("accessKeyId"),
        "username": user.get("userName"),
        "sessioncontext": {
            "attributes": {
                "mfaauthenticated": attributes.get("mfaAuthenticated"),
                "creationdate": attributes.get("creationDate"),
            },
            "sessionissuer": {
                "type": issuer.get("type"),
                "principalid": issuer.get("principalId"),
                "arn": issuer.get("arn"),
                "accountid": issuer.get("accountId"),
                "username": issuer.get("userName"),
            },
            "sourceidentity": context.get("sourceIdentity"),
        },
    }


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _lake_map(value: Any) -> dict[str, list[str]] | None:
    """map<string,string>: strings as they are, anything nested as JSON text."""
    if not isinstance(value, dict):
        return None
    keys = list(value)
    values = [v if isinstance(v, str) else json.dumps(v) for v in value.values()]
    return {"key": keys, "value": values}


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)")
    con.execute("CREATE MACRO element_at(m, k) AS m[k]")
    return con


def athena(
    con: duckdb.DuckDBPyConnection, records: list[dict[str, Any]], name: str = "cloudtrail_logs"
) -> None:
    con.execute(
        f"CREATE TABLE {name} (eventversion VARCHAR, useridentity {USER_IDENTITY}, "
        "eventtime VARCHAR, eventsource VARCHAR, eventname VARCHAR, awsregion VARCHAR, "
        "sourceipaddress VARCHAR, useragent VARCHAR, errorcode VARCHAR, errormessage VARCHAR, "
        "requestparameters VARCHAR, responseelements VARCHAR, requestid VARCHAR, eventid VARCHAR)"
    )
    rows = [
        (
            r.get("eventVersion"),
            _identity(r.get("userIdentity") or {}),
            r.get("eventTime"),
            r.get("eventSource"),
            r.get("eventName"),
            r.get("awsRegion"),
            r.get("sourceIPAddress"),
            r.get("userAgent"),
            r.get("errorCode"),
            r.get("errorMessage"),
            _json_text(r.get("requestParameters")),
            _json_text(r.get("responseElements")),
            r.get("requestID"),
            r.get("eventID"),
        )
        for r in records
    ]
    con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * 14)})", rows)  # noqa: S608


def lake(con: duckdb.DuckDBPyConnection, records: list[dict[str, Any]], name: str) -> None:
    con.execute(
        f"CREATE TABLE {name} (eventversion VARCHAR, useridentity {USER_IDENTITY}, "
        "eventtime TIMESTAMP, eventsource VARCHAR, eventname VARCHAR, errorcode VARCHAR, "
        "requestparameters MAP(VARCHAR, VARCHAR), responseelements MAP(VARCHAR, VARCHAR), "
        "eventid VARCHAR)"
    )
    rows = [
        (
            r.get("eventVersion"),
            _identity(r.get("userIdentity") or {}),
            datetime.fromisoformat(r["eventTime"]).replace(tzinfo=None),
            r.get("eventSource"),
            r.get("eventName"),
            r.get("errorCode"),
            _lake_map(r.get("requestParameters")),
            _lake_map(r.get("responseElements")),
            r.get("eventID"),
        )
        for r in records
    ]
    con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * 9)})", rows)  # noqa: S608


def bigquery(con: duckdb.DuckDBPyConnection, entries: list[dict[str, Any]]) -> None:
    for log in ("activity", "data_access"):
        con.execute(
            f"CREATE TABLE cloudaudit_googleapis_com_{log} (insertId VARCHAR, "
            f"timestamp TIMESTAMPTZ, protopayload_auditlog {AUDIT_LOG})"
        )
    for entry in entries:
        payload = entry["protoPayload"]
        auth = payload.get("authenticationInfo") or {}
        attributes = (payload.get("requestMetadata") or {}).get("requestAttributes") or {}
        log = entry["logName"].rsplit("%2F", 1)[-1]
        con.execute(
            f"INSERT INTO cloudaudit_googleapis_com_{log} VALUES (?, ?, ?)",  # noqa: S608
            (
                entry["insertId"],
                datetime.fromisoformat(entry["timestamp"]),
                {
                    "serviceName": payload.get("serviceName"),
                    "methodName": payload.get("methodName"),
                    "resourceName": payload.get("resourceName"),
                    "status": {"code": (payload.get("status") or {}).get("code")},
                    "authenticationInfo": {
                        "principalEmail": auth.get("principalEmail"),
                        "principalSubject": auth.get("principalSubject"),
                        "serviceAccountDelegationInfo": [
                            {"principalSubject": d.get("principalSubject")}
                            for d in auth.get("serviceAccountDelegationInfo") or []
                        ],
                    },
                    "requestMetadata": {"requestAttributes": {"reason": attributes.get("reason")}},
                },
            ),
        )


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

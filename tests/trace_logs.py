"""Cloud log records in the clouds' own schemas, for the `audit trace` tests.

CloudTrail: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
and the STS examples of https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html
(AssumeRole with `sourceIdentity`, AssumeRoleWithWebIdentity from a `WebIdentityUser`).
GCP: LogEntry with an AuditLog `protoPayload`, as in
https://cloud.google.com/iam/docs/audit-logging/examples-workload-identity.
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"


def ct_time(moment: datetime) -> str:
    """CloudTrail's eventTime: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def assumed_role_arn(role_arn: str, session: str) -> str:
    account = role_arn.split(":")[4]
    return f"arn:aws:sts::{account}:assumed-role/{role_name(role_arn)}/{session}"


def call(
    event_id: str,
    moment: datetime,
    *,
    key: str,
    role_arn: str,
    session: str,
    source_identity: str | None = None,
    event_name: str = "GetCallerIdentity",
    event_source: str = "sts.amazonaws.com",
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    resources: list[dict[str, str]] | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """A call made with an assumed-role session's credentials."""
    context: dict[str, Any] = {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROA3XFRBF535PLBIFPI4",
            "arn": role_arn,
            "accountId": ACCOUNT,
            "userName": role_name(role_arn),
        },
        "attributes": {"creationDate": ct_time(moment), "mfaAuthenticated": "false"},
    }
    if source_identity is not None:
        context["sourceIdentity"] = source_identity
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROA3XFRBF535PLBIFPI4:{session}",
            "arn": assumed_role_arn(role_arn, session),
            "accountId": ACCOUNT,
            "accessKeyId": key,
            "sessionContext": context,
        },
        "eventTime": ct_time(moment),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 lang/python#3.11.7",
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id,
        "readOnly": event_name.startswith(("Get", "List", "Describe")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if resources is not None:
        record["resources"] = resources
    if error_code is not None:
        record["errorCode"] = error_code
        record["errorMessage"] = "User is not authorized to perform this operation"
    return record


def _minted(role_arn: str, session: str, key: str, source_identity: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "credentials": {
            "accessKeyId": key,
            "sessionToken": "<encoded session token blob>",
            "expiration": "Dec 3, 2026, 10:04:15 AM",
        },
        "assumedRoleUser": {
            "assumedRoleId": f"AROA3XFRBF535PLBIFPI4:{session}",
            "arn": assumed_role_arn(role_arn, session),
        },
    }
    if source_identity is not None:
        response["sourceIdentity"] = source_identity
    return response


def assume_role(
    event_id: str,
    moment: datetime,
    *,
    caller_key: str,
    caller_role_arn: str,
    caller_session: str,
    role_arn: str,
    session: str,
    key: str,
    source_identity: str | None = None,
) -> dict[str, Any]:
    """`AssumeRole` by a session (a chained hop), returning a new session's key."""
    request: dict[str, Any] = {"roleArn": role_arn, "roleSessionName": session}
    if source_identity is not None:
        request["sourceIdentity"] = source_identity
    return call(
        event_id,
        moment,
        key=caller_key,
        role_arn=caller_role_arn,
        session=caller_session,
        source_identity=source_identity,
        event_name="AssumeRole",
        request=request,
        response=_minted(role_arn, session, key, source_identity),
        resources=[{"ARN": role_arn, "accountId": ACCOUNT, "type": "AWS::IAM::Role"}],
    )


def web_identity(
    event_id: str,
    moment: datetime,
    *,
    role_arn: str,
    session: str,
    key: str,
    issuer: str = "token.actions.githubusercontent.com",
    subject: str = "repo:nhi-sandbox/demo:ref:refs/heads/main",
) -> dict[str, Any]:
    """`AssumeRoleWithWebIdentity`: no caller key; the response names the new session's key."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "WebIdentityUser",
            "principalId": f"{issuer}:sts.amazonaws.com:{subject}",
            "userName": subject,
            "identityProvider": issuer,
        },
        "eventTime": ct_time(moment),
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRoleWithWebIdentity",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "nhi-invoke/0.1.0",
        "requestParameters": {
            "roleArn": role_arn,
            "roleSessionName": session,
            "durationSeconds": 900,
        },
        "responseElements": {
            **_minted(role_arn, session, key, None),
            "subjectFromWebIdentityToken": subject,
            "provider": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}",
            "audience": "sts.amazonaws.com",
        },
        "requestID": str(uuid.uuid4()),
        "eventID": event_id,
        "readOnly": True,
        "resources": [{"ARN": role_arn, "accountId": ACCOUNT, "type": "AWS::IAM::Role"}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def write_delivery(
    root: Path, moment: datetime, records: list[dict[str, Any]], *, gz: bool = True
) -> Path:
    """A log file where CloudTrail delivers it: AWSLogs/<account>/CloudTrail/<region>/y/m/d/."""
    utc = moment.astimezone(UTC)
    folder = root / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-east-1" / utc.strftime("%Y/%m/%d")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{ACCOUNT}_CloudTrail_us-east-1_{utc:%Y%m%dT%H%MZ}_{uuid.uuid4().hex[:16]}.json"
    body = json.dumps({"Records": records}, separators=(",", ":")).encode()
    path = folder / (name + ".gz" if gz else name)
    path.write_bytes(gzip.compress(body) if gz else body)
    return path


def write_digest(root: Path, moment: datetime) -> Path:
    """A digest file, as CloudTrail writes beside the logs (it holds no events)."""
    utc = moment.astimezone(UTC)
    folder = (
        root / "AWSLogs" / ACCOUNT / "CloudTrail-Digest" / "us-east-1" / utc.strftime("%Y/%m/%d")
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ACCOUNT}_CloudTrail-Digest_us-east-1_trail_{utc:%Y%m%dT%H%M%SZ}.json.gz"
    digest = {"awsAccountId": ACCOUNT, "digestStartTime": ct_time(utc), "logFiles": []}
    path.write_bytes(gzip.compress(json.dumps(digest).encode()))
    return path


def write_lookup(path: Path, records: list[dict[str, Any]]) -> Path:
    """What `aws cloudtrail lookup-events --output json` prints: each record as a JSON string."""
    events = []
    for record in records:
        user = record["userIdentity"]
        events.append(
            {
                "EventId": record["eventID"],
                "EventName": record["eventName"],
                "ReadOnly": str(record.get("readOnly", False)).lower(),
                "AccessKeyId": user.get("accessKeyId", ""),
                "EventTime": record["eventTime"].replace("Z", "+00:00"),
                "EventSource": record["eventSource"],
                "Username": user.get("arn", "").rsplit("/", 1)[-1],
                "Resources": [
                    {"ResourceType": r["type"], "ResourceName": r["ARN"]}
                    for r in record.get("resources", [])
                ],
                "CloudTrailEvent": json.dumps(record),
            }
        )
    path.write_text(json.dumps({"Events": events}, indent=4))
    return path


def gcp_entry(
    insert_id: str,
    moment: datetime,
    *,
    method: str,
    service: str,
    resource: str,
    principal_email: str | None = None,
    principal_subject: str | None = None,
    delegates: tuple[str, ...] = (),
    reason: str | None = None,
    log: str = "data_access",
    project: str = "nhi-sandbox",
    status_code: int | None = None,
) -> dict[str, Any]:
    """A Cloud Audit Logs LogEntry as `gcloud logging read --format=json` prints it."""
    authentication: dict[str, Any] = {}
    if principal_email is not None:
        authentication["principalEmail"] = principal_email
    if principal_subject is not None:
        authentication["principalSubject"] = principal_subject
    if delegates:
        authentication["serviceAccountDelegationInfo"] = [
            {"principalSubject": d} for d in delegates
        ]
    attributes: dict[str, Any] = {"time": moment.astimezone(UTC).isoformat(), "auth": {}}
    if reason is not None:
        attributes["reason"] = reason
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {} if status_code is None else {"code": status_code, "message": "denied"},
        "authenticationInfo": authentication,
        "requestMetadata": {
            "callerIp": "192.0.2.10",
            "callerSuppliedUserAgent": "google-cloud-sdk gcloud/528.0.0",
            "requestAttributes": attributes,
            "destinationAttributes": {},
        },
        "serviceName": service,
        "methodName": method,
        "resourceName": resource,
    }
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "insertId": insert_id,
        "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2F{log}",
        "protoPayload": payload,
        "receiveTimestamp": stamp,
        "resource": {"labels": {"project_id": project}, "type": "audited_resource"},
        "severity": "INFO" if status_code is None else "ERROR",
        "timestamp": stamp,
    }

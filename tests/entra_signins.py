"""Entra ID sign-ins in Microsoft's own shapes, for the `audit trace --azure-signins` tests.

Graph beta `signIn` (https://learn.microsoft.com/graph/api/resources/signin?view=graph-rest-beta)
as `GET /beta/auditLogs/signIns?$filter=signInEventTypes/any(t: t eq 'servicePrincipal')` pages
it, and the same sign-in as an Azure Monitor diagnostic setting writes it to a storage account
(the resource-log common schema with the signIn in `properties`, one record per line:
https://learn.microsoft.com/azure/azure-monitor/platform/resource-logs-schema).
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ARM_APP_ID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"  # Windows Azure Service Management API
GRAPH_CONTEXT = "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns"


def graph_time(moment: datetime) -> str:
    """Graph's createdDateTime: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_in(
    moment: datetime,
    *,
    app_id: str,
    service_principal_id: str,
    correlation_id: str,
    token_id: str | None,
    error_code: int = 0,
    sign_in_id: str | None = None,
    ip_address: str = "192.0.2.10",
    tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
) -> dict[str, Any]:
    """A service principal's sign-in with a federated identity credential (Graph beta)."""
    return {
        "id": sign_in_id or str(uuid.uuid4()),
        "createdDateTime": graph_time(moment),
        "appDisplayName": "nhi-sandbox-deployer",
        "appId": app_id,
        "correlationId": correlation_id,
        "ipAddress": ip_address,
        "isInteractive": False,
        "resourceDisplayName": "Windows Azure Service Management API",
        "resourceId": ARM_APP_ID,
        "resourceTenantId": tenant_id,
        "servicePrincipalId": service_principal_id,
        "servicePrincipalName": "nhi-sandbox-deployer",
        "servicePrincipalCredentialKeyId": None,
        "federatedCredentialId": "8a0cdb9e-b6d6-4a6a-b0d4-4d7b6a6b1c77",
        "clientCredentialType": "federatedIdentityCredential",
        "uniqueTokenIdentifier": token_id,
        "signInEventTypes": ["servicePrincipal"],
        "tokenIssuerType": "AzureAD",
        "status": {
            "errorCode": error_code,
            "failureReason": "Other." if error_code else None,
            "additionalDetails": None,
        },
        "userId": "",
        "userDisplayName": None,
        "userPrincipalName": None,
    }


def graph_page(sign_ins: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@odata.context": GRAPH_CONTEXT, "value": sign_ins}


def monitor_record(entry: dict[str, Any], category: str = "ServicePrincipalSignInLogs") -> dict:
    """The sign-in as a diagnostic setting exports it (`time`, `category`, `properties`)."""
    if category == "ManagedIdentitySignInLogs":
        entry = entry | {"signInEventTypes": ["managedIdentity"]}
    tenant = entry.get("resourceTenantId", "")
    return {
        "time": entry["createdDateTime"].replace("Z", ".1234567Z"),
        "resourceId": f"/tenants/{tenant}/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": category,
        "tenantId": tenant,
        "resultType": str(entry["status"]["errorCode"]),
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": entry["ipAddress"],
        "correlationId": entry["correlationId"],
        "identity": entry["servicePrincipalName"],
        "Level": 4,
        "location": "US",
        "properties": entry,
    }


def write_graph_pages(path: Path, *pages: list[dict[str, Any]]) -> Path:
    """Graph pages as saved one after the other (pretty-printed, as `jq .` or a script saves)."""
    path.write_text("\n".join(json.dumps(graph_page(p), indent=2) for p in pages))
    return path


def write_monitor_export(
    path: Path, sign_ins: list[dict[str, Any]], *, gz: bool = True, category: str | None = None
) -> Path:
    """A storage account's PT1H.json blob: one record per line."""
    lines = "".join(
        json.dumps(monitor_record(s, category) if category else monitor_record(s)) + "\n"
        for s in sign_ins
    )
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(lines)
    else:
        path.write_text(lines)
    return path

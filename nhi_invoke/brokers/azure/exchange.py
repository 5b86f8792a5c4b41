"""One client-credentials grant at Entra's token endpoint, with the pipeline's OIDC token as
the client assertion (the third case of Microsoft's client-credentials flow), through the one
HTTP seam. Standard library only: no MSAL, no azure-identity in nhi-invoke itself."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nhi_invoke import __version__, net
from nhi_invoke.brokers.azure.plan import JWT_BEARER, AzurePlan
from nhi_invoke.brokers.azure.refusals import EntraError
from nhi_invoke.brokers.grants import Secret
from nhi_invoke.errors import UnavailableError
from nhi_invoke.retry import Retryable

# The access token's claims worth recording: who it is (oid, tid, appid/azp), for what (aud),
# which token it is in Entra's sign-in logs (uti: uniqueTokenIdentifier). Never the token.
RECORDED_CLAIMS = ("oid", "tid", "aud", "appid", "azp", "uti", "ver", "idtyp", "xms_mirid")


@dataclass(frozen=True)
class EntraToken:
    """An access token Entra issued, and what it says about itself (read, not verified)."""

    token: Secret
    expires_at: datetime
    claims: dict[str, Any]


def _claims(token: str) -> dict[str, Any]:
    """The token's recorded claims; {} for a token that is not a readable JWT (Entra says
    clients must treat access tokens as opaque: this is for the ledger only)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    if not isinstance(payload, dict):
        return {}
    return {k: payload[k] for k in RECORDED_CLAIMS if k in payload}


def request(plan: AzurePlan, scope: str, assertion: str) -> EntraToken | EntraError:
    """Ask Entra for a token for `scope`. A transient failure (connection, 429, 5xx) raises
    `Retryable`; a refusal is returned as Entra's error for the broker to name."""
    form = {
        "client_id": plan.client_id,
        "scope": scope,
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        # The invocation, as Entra's sign-in logs keep it (their correlation id).
        "client-request-id": plan.client_request_id,
        "return-client-request-id": "true",
        "x-client-SKU": "nhi-invoke",
        "x-client-Ver": __version__,
    }
    response = net.request(
        "POST",
        plan.token_url,
        body=urllib.parse.urlencode(form).encode(),
        headers=headers,
        tls=net.Tls(
            ca_file=plan.ca_file,
            label=f"NHI_AZURE_CA_BUNDLE={plan.ca_file}",
            fix_variable="NHI_AZURE_CA_BUNDLE",
        )
        if plan.ca_file
        else None,
    )
    if response.retryable:
        raise Retryable(f"HTTP {response.status} from Entra's token endpoint")
    if response.status != 200:
        return EntraError.parse(response.status, response.body)
    return _token(response.body)


def _token(body: bytes) -> EntraToken:
    try:
        data = json.loads(body)
        token = data["access_token"]
        lifetime = int(data.get("expires_in") or 0)
    except (ValueError, KeyError, TypeError) as exc:
        raise UnavailableError(
            "Entra's token endpoint answered 200 without a token and its lifetime",
            "check that AZURE_AUTHORITY_HOST (if set) is an Entra authority",
        ) from exc
    if not isinstance(token, str) or not token or lifetime <= 0:
        raise UnavailableError(
            "Entra's token endpoint answered 200 without a token and its lifetime",
            "check that AZURE_AUTHORITY_HOST (if set) is an Entra authority",
        )
    expires_at = datetime.now(UTC) + timedelta(seconds=lifetime)
    return EntraToken(Secret(token), expires_at, _claims(token))

"""Azure's tokens for the command: a managed-identity endpoint in App Service's protocol,
which azure-identity's `ManagedIdentityCredential` and `DefaultAzureCredential` (through MSAL)
and `az login --identity` read from `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`.

`GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=<id>]` with
`X-IDENTITY-HEADER` answers `{"access_token", "expires_on" (epoch seconds), "resource",
"token_type", "client_id"}`. The header is a random secret, compared in constant time on
every request; a resource outside the allowed scopes, or another identity, is refused in App
Service's error shape, `{"statusCode", "message"}`, which the SDKs show. Each token is minted
when first asked for and again when it has less than the refresh margin left.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from nhi_invoke.brokers.grants import Grant, Secret
from nhi_invoke.brokers.serving import CurrentGrant, Endpoint, Reply
from nhi_invoke.errors import NhiError, UnavailableError

if TYPE_CHECKING:
    from nhi_invoke.brokers.azure.broker import AzureBroker

API_VERSION = "2019-08-01"
HEADER = "X-Identity-Header"  # as the host hands headers over: Title-Case
# Ways a request may name a user-assigned identity; only the client id is known up front.
OTHER_IDENTITY_PARAMETERS = ("object_id", "principal_id", "mi_res_id", "msi_res_id")


def _error(status: int, message: str) -> Reply:
    body = {"statusCode": status, "message": message}
    return Reply(status, "application/json", json.dumps(body), {"Cache-Control": "no-store"})


class ManagedIdentityEndpoint(Endpoint):
    """Serves this invocation's identity, a token per allowed resource, to the command."""

    def __init__(self, broker: AzureBroker, grant: CurrentGrant) -> None:
        self.broker = broker
        self.plan = broker.plan
        self.grant = grant
        self.header = Secret(secrets.token_urlsafe(32))
        self._tokens: dict[str, Grant] = {self.plan.first_scope: grant.current}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def environment(self, base_url: str) -> dict[str, str]:
        # AZURE_CONFIG_DIR comes from the broker's private configuration (broker.py).
        return {"IDENTITY_ENDPOINT": base_url, "IDENTITY_HEADER": self.header.reveal()}

    def secrets(self) -> tuple[Secret, ...]:
        return (self.header,)

    def handle(self, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply:
        if path not in ("", "/"):
            return _error(404, "not found")
        presented = headers.get(HEADER, "").encode()
        if not hmac.compare_digest(presented, self.header.reveal().encode()):
            return _error(401, "X-IDENTITY-HEADER is missing or wrong")
        if query.get("api-version") != API_VERSION:
            return _error(400, f"api-version must be {API_VERSION} (App Service's protocol)")
        problem = self._other_identity(query)
        if problem is not None:
            return _error(400, problem)
        resource = query.get("resource", "")
        if not resource:
            return _error(400, "the resource parameter is required")
        if self.plan.allows(resource) is None:
            return _error(
                400,
                f"nhi-invoke: this step may not get tokens for {resource!r} (allowed: "
                f"{', '.join(self.plan.scopes)}); fix: add --azure-scope "
                f"{resource.rstrip('/')}/.default to the step if it needs it",
            )
        try:
            grant = self._token(resource + "/.default")
        except NhiError as error:
            status = 502 if isinstance(error, UnavailableError) else 403
            return _error(status, "nhi-invoke: " + error.one_line())
        body = {
            "access_token": grant.hidden[0].reveal(),
            "expires_on": str(int(grant.expires_at.timestamp())),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": self.plan.client_id,
        }
        return Reply(200, "application/json", json.dumps(body), {"Cache-Control": "no-store"})

    def _other_identity(self, query: Mapping[str, str]) -> str | None:
        """Why a request for a named identity cannot be served; None when it is ours."""
        asked = query.get("client_id")
        if asked is not None and asked.strip().lower() != self.plan.client_id:
            return (
                f"nhi-invoke: this step's identity is {self.plan.client_id}, not {asked!r}; "
                "fix: ask without client_id, or with AZURE_CLIENT_ID as nhi-invoke sets it"
            )
        named = next((p for p in OTHER_IDENTITY_PARAMETERS if p in query), None)
        if named is not None:
            return (
                f"nhi-invoke: this endpoint serves {self.plan.client_id} by client_id only, "
                f"not by {named}; fix: ask without {named}"
            )
        return None

    def _token(self, scope: str) -> Grant:
        """The token for `scope`: the one held, or a new one when it is near its end."""
        with self._lock:
            lock = self._locks.setdefault(scope, threading.Lock())
        with lock:
            held = self._tokens.get(scope)
            margin = self.grant.margin_seconds
            if held is not None and (held.expires_at - datetime.now(UTC)).total_seconds() >= margin:
                return held
            fresh = self.broker.mint(scope, self.grant.tokens, self.grant.record)
            self._tokens[scope] = fresh
            return fresh

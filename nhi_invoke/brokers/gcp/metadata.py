"""GCP under --serve: the metadata-server protocol (`GCE_METADATA_HOST`), which google-auth's
application default credentials and gcloud read.

It answers what they ask: `project/project-id` (--gcp-project, else the service account's
project), `project/numeric-project-id` (the workload identity pool's project: gcloud takes a
numeric answer there as the sign of a metadata server), the service account's `email`,
`scopes`, `token` and `?recursive` listing (as `default` and by email), and the universe
domain. `identity` (ID tokens) is refused with a message saying so. `Metadata-Flavor: Google`
is required of every request and carried by every answer, refusals included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from nhi_invoke.brokers.gcp.plan import METADATA_VARIABLES, GcpPlan
from nhi_invoke.brokers.serving import CurrentGrant, Endpoint, Reply

PREFIX = "/computeMetadata/v1/"
_FLAVOR = {"Metadata-Flavor": "Google"}
NO_IDENTITY = (
    "nhi-invoke serves no identity tokens (instance/service-accounts/…/identity): the step "
    "gets an access token only; mint an ID token with IAM Credentials' generateIdToken instead"
)


def _text(body: str, status: int = 200) -> Reply:
    return Reply(status, "text/plain", body, _FLAVOR)


def _json(body: object) -> Reply:
    return Reply(200, "application/json", json.dumps(body), _FLAVOR)


class MetadataServer(Endpoint):
    """Serves the current access token, re-issued ahead of its expiry, as a metadata server."""

    def __init__(self, grant: CurrentGrant, plan: GcpPlan) -> None:
        self.grant = grant
        self.plan = plan

    def environment(self, base_url: str) -> dict[str, str]:
        # google-auth reads HOST for requests and IP for its detection ping; gcloud reads ROOT.
        return dict.fromkeys(METADATA_VARIABLES, base_url.removeprefix("http://"))

    def handle(self, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply:
        if not (path in ("", "/") or path.startswith(PREFIX)):
            return _text("not found", 404)
        if headers.get("Metadata-Flavor") != "Google":
            return _text("Metadata-Flavor: Google is required", 403)
        if path in ("", "/"):  # google-auth's ping
            return _text("computeMetadata/\n")
        return self._get(path.removeprefix(PREFIX))

    def _get(self, path: str) -> Reply:
        email = self.grant.current.principal
        # google-auth asks for `default` first, then by the account's email.
        for alias in ("default", email):
            prefix = f"instance/service-accounts/{alias}/"
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                return self._account(path.removeprefix(prefix).rstrip("/"), email)
        if path in ("instance/service-accounts", "instance/service-accounts/"):
            return _text("default/\n" + email + "/\n")
        project = self.plan.served_project
        number = self.plan.served_project_number
        if path == "project/project-id" and project:
            return _text(project)
        if path == "project/numeric-project-id":
            return _text(number)
        if path == "universe/universe-domain":
            return _text("googleapis.com")
        return _text("not found", 404)

    def _account(self, item: str, email: str) -> Reply:
        """One item below instance/service-accounts/<default or email>/."""
        if item == "token":
            grant = self.grant.get()
            left = max(0, int((grant.expires_at - datetime.now(UTC)).total_seconds()))
            token = grant.environment["CLOUDSDK_AUTH_ACCESS_TOKEN"].reveal()
            return _json({"access_token": token, "expires_in": left, "token_type": "Bearer"})
        if item == "email":
            return _text(email)
        if item == "scopes":
            return _text("\n".join(self.plan.scopes))
        if item == "aliases":
            return _text("default")
        if item == "identity":
            return _text(NO_IDENTITY, 404)
        if item == "":
            return _json({"aliases": ["default"], "email": email, "scopes": list(self.plan.scopes)})
        return _text("not found", 404)

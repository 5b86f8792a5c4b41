"""AWS under --serve: the container-credentials protocol, which every AWS SDK and the CLI read
(`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN`)."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.brokers.serving import CurrentGrant, Endpoint, Reply

_EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ContainerCredentials(Endpoint):
    """Serves the current session, re-issued near its expiry, to a caller holding the token."""

    def __init__(self, grant: CurrentGrant) -> None:
        self.grant = grant
        # Checked on every request, on top of the host's random path.
        self.token = secrets.token_urlsafe(32)

    def environment(self, base_url: str) -> dict[str, str]:
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": base_url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.token,
        }

    def secrets(self) -> tuple[Secret, ...]:
        return (Secret(self.token),)

    def handle(self, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply:
        if path != "":
            return Reply(404, "text/plain", "not found")
        if not hmac.compare_digest(headers.get("Authorization", ""), self.token):
            return Reply(401, "text/plain", "unauthorized")
        grant = self.grant.get()
        env = grant.environment
        body = {
            "AccessKeyId": env["AWS_ACCESS_KEY_ID"].reveal(),
            "SecretAccessKey": env["AWS_SECRET_ACCESS_KEY"].reveal(),
            "Token": env["AWS_SESSION_TOKEN"].reveal(),
            "Expiration": grant.expires_at.strftime(_EXPIRATION_FORMAT),
        }
        return Reply(200, "application/json", json.dumps(body))

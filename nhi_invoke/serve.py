"""`--serve`: short credentials served to the command for exactly as long as it runs.

Two loopback endpoints the SDKs already understand, instead of static variables:

- AWS: the container-credentials protocol (`AWS_CONTAINER_CREDENTIALS_FULL_URI` +
  `AWS_CONTAINER_AUTHORIZATION_TOKEN`), which every AWS SDK and the CLI read.
- GCP: the metadata-server protocol (`GCE_METADATA_HOST`), which google-auth's application
  default credentials and gcloud read.

Both live under an unguessable path on 127.0.0.1 (the AWS one also checks a random token on
every request), are started after the first credential is issued, and are stopped the moment
the command exits. A credential is re-issued, from a fresh OIDC token, when the command asks
for it and it has less than the refresh margin left; each new one is recorded like the first.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nhi_invoke.clouds.interface import Grant
from nhi_invoke.diagnostics import Log
from nhi_invoke.errors import NhiError

log = Log("serve")
METADATA_PREFIX = "/computeMetadata/v1/"


class Refresher:
    """One cloud's current credential, re-issued when it is about to expire."""

    def __init__(self, first: Grant, issue: Callable[[], Grant], margin_seconds: float) -> None:
        self.current = first
        self.issue = issue
        self.margin_seconds = margin_seconds
        self._lock = threading.Lock()

    def get(self) -> Grant:
        """The current credential, re-issued first if it has less than the margin left."""
        with self._lock:
            left = (self.current.expires_at - datetime.now(UTC)).total_seconds()
            if left < self.margin_seconds:
                try:
                    self.current = self.issue()
                except NhiError as error:
                    if left <= 0:
                        raise
                    # Still valid: serve it, and try again on the next request.
                    log.warning(
                        "refresh failed, serving the current credential: %s", error.one_line()
                    )
            return self.current


@dataclass(frozen=True)
class Endpoints:
    """Where the command finds its credentials (the values are secrets of this command)."""

    aws_uri: str | None
    aws_token: str | None
    metadata_host: str | None


def _aws_body(grant: Grant) -> dict[str, str]:
    env = grant.environment
    return {
        "AccessKeyId": env["AWS_ACCESS_KEY_ID"].reveal(),
        "SecretAccessKey": env["AWS_SECRET_ACCESS_KEY"].reveal(),
        "Token": env["AWS_SESSION_TOKEN"].reveal(),
        "Expiration": grant.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class CredentialServer:
    """The loopback server; `start()` before the command, `stop()` the moment it exits."""

    def __init__(
        self,
        aws: Refresher | None,
        gcp: Refresher | None,
        *,
        gcp_project: str | None,
        gcp_project_number: str | None,
        gcp_scopes: tuple[str, ...],
    ) -> None:
        self.aws = aws
        self.gcp = gcp
        self.gcp_project = gcp_project
        self.gcp_project_number = gcp_project_number
        self.gcp_scopes = gcp_scopes
        self.secret_path = "/" + secrets.token_urlsafe(24)
        self.aws_token = secrets.token_urlsafe(32)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def endpoints(self) -> Endpoints:
        return Endpoints(
            aws_uri=f"http://{self.address}{self.secret_path}/aws" if self.aws else None,
            aws_token=self.aws_token if self.aws else None,
            metadata_host=f"{self.address}{self.secret_path}" if self.gcp else None,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _gcp_get(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) for a metadata path below /computeMetadata/v1/."""
        assert self.gcp is not None
        email = self.gcp.current.principal
        # google-auth asks for `default` first, then by the account's email.
        for alias in ("default", email):
            prefix = f"instance/service-accounts/{alias}/"
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                return self._account(path.removeprefix(prefix).rstrip("/"), email)
        if path == "instance/service-accounts/":
            return 200, "text/plain", "default/\n" + email + "/\n"
        if path == "project/project-id" and self.gcp_project:
            return 200, "text/plain", self.gcp_project
        if path == "project/numeric-project-id" and self.gcp_project_number:
            return 200, "text/plain", self.gcp_project_number
        if path == "universe/universe-domain":
            return 200, "text/plain", "googleapis.com"
        return 404, "text/plain", "not found"

    def _account(self, item: str, email: str) -> tuple[int, str, str]:
        """One item below instance/service-accounts/<default or email>/."""
        assert self.gcp is not None
        if item == "token":
            grant = self.gcp.get()
            left = max(0, int((grant.expires_at - datetime.now(UTC)).total_seconds()))
            token = grant.environment["CLOUDSDK_AUTH_ACCESS_TOKEN"].reveal()
            return (
                200,
                "application/json",
                json.dumps({"access_token": token, "expires_in": left, "token_type": "Bearer"}),
            )
        if item == "email":
            return 200, "text/plain", email
        if item == "scopes":
            return 200, "text/plain", "\n".join(self.gcp_scopes)
        if item == "":
            body = {"aliases": ["default"], "email": email, "scopes": list(self.gcp_scopes)}
            return 200, "application/json", json.dumps(body)
        return 404, "text/plain", "not found"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: request lines would show the secret path."""

            def _send(
                self, status: int, content_type: str, body: str, metadata: bool = False
            ) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if metadata:
                    self.send_header("Metadata-Flavor", "Google")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path, _, _query = self.path.partition("?")
                if not path.startswith(server.secret_path):
                    self._send(404, "text/plain", "not found")
                    return
                rest = path[len(server.secret_path) :]
                try:
                    if rest == "/aws" and server.aws is not None:
                        self._aws()
                    elif server.gcp is not None and (
                        rest in ("", "/") or rest.startswith(METADATA_PREFIX)
                    ):
                        self._metadata(rest.removeprefix(METADATA_PREFIX))
                    else:
                        self._send(404, "text/plain", "not found")
                except NhiError as error:
                    # The command's SDK shows this; it names the failure, never a secret.
                    self._send(503, "text/plain", error.one_line())

            def _aws(self) -> None:
                assert server.aws is not None
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given, server.aws_token):
                    self._send(401, "text/plain", "unauthorized")
                    return
                self._send(200, "application/json", json.dumps(_aws_body(server.aws.get())))

            def _metadata(self, path: str) -> None:
                if self.headers.get("Metadata-Flavor") != "Google":
                    self._send(
                        403, "text/plain", "Metadata-Flavor: Google is required", metadata=True
                    )
                    return
                if path in ("", "/"):  # google-auth's ping
                    self._send(200, "text/plain", "computeMetadata/\n", metadata=True)
                    return
                status, content_type, body = server._gcp_get(path)
                self._send(status, content_type, body, metadata=True)

        return Handler

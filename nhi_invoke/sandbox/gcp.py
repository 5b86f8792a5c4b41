"""A GCP STS + IAM Credentials emulator that checks what real Google checks.

- `POST /v1/token`: the token-exchange form (grant and token types, the provider's resource
  name as audience, a scope) or, as Google's STS also takes, the same fields as a JSON object
  in camelCase (google-github-actions/auth sends that), and a subject token that is an RS256
  JWT signed by the sandbox issuer for the provider's audience, unexpired, from the allowed
  repository.
- `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`: a bearer federated token
  it issued, a service account the federated principal may impersonate, a non-empty `scope`
  list and a `lifetime` of 1-3600 s written as "<n>s".
- `GET /tokeninfo?access_token=…`: who a token belongs to and the seconds it has left, so a
  command can prove its identity.
- `GET /__sandbox/requests`: every request received, with token values replaced by their
  fingerprints, for the tests.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

import jwt

from nhi_invoke.oidc import fingerprint
from nhi_invoke.sandbox.loopback import JsonHandler, LoopbackService

if TYPE_CHECKING:
    from nhi_invoke.sandbox.emulators import SandboxRequest
    from nhi_invoke.sandbox.oidc_issuer import OidcIssuer

PROJECT_NUMBER = "123456789012"
POOL = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/nhi-sandbox"
PROVIDER = f"{POOL}/providers/github"
SERVICE_ACCOUNT = "deployer@nhi-sandbox.iam.gserviceaccount.com"
DENIED_SERVICE_ACCOUNT = "denied@nhi-sandbox.iam.gserviceaccount.com"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = (
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
)
AUDIENCE = re.compile(
    r"//iam\.googleapis\.com/(projects/\d+/locations/global/workloadIdentityPools/"
    r"[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32})"
)
GENERATE = re.compile(r"/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken")
MAX_FEDERATED_SECONDS = 3600
MAX_LIFETIME_SECONDS = 3600


def _token_request(raw: str, content_type: str) -> dict[str, str]:
    """The exchange's fields from a form, or from JSON (`subjectToken` read as `subject_token`)."""
    if not content_type.startswith("application/json"):
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {
        "".join(f"_{c.lower()}" if c.isupper() else c for c in key): str(value)
        for key, value in body.items()
    }


@dataclass
class _Issued:
    principal: str
    expires: float
    repository: str
    email: str | None = None
    scopes: list[str] = field(default_factory=list)


class GcpEmulator(LoopbackService):
    """The emulator on 127.0.0.1 at a free port, trusting one issuer and one repository."""

    def __init__(self, issuer_url: str, issuer_jwks: dict[str, Any], repository: str) -> None:
        self.issuer_url = issuer_url
        self.keys = {k["kid"]: jwt.PyJWK(k) for k in issuer_jwks["keys"]}
        self.repository = repository
        self.impersonators = {SERVICE_ACCOUNT: repository}
        self.tokens: dict[str, _Issued] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def _record(self, method: str, path: str, headers: dict[str, str], fields: Any) -> None:
        shown = dict(fields) if isinstance(fields, dict) else fields
        if isinstance(shown, dict) and "subject_token" in shown:
            shown["subject_token"] = fingerprint(str(shown["subject_token"]))
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "fields": shown,
                    "reason": headers.get("X-Goog-Request-Reason"),
                    "content_type": headers.get("Content-Type"),
                    "authorized": "Authorization" in headers,
                }
            )

    # -- STS -------------------------------------------------------------------------------

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        def fail(error: str, description: str) -> tuple[int, dict[str, Any]]:
            return 400, {"error": error, "error_description": description}

        if form.get("grant_type") != TOKEN_EXCHANGE:
            return fail("invalid_request", f"grant_type must be {TOKEN_EXCHANGE}")
        if form.get("requested_token_type") != ACCESS_TOKEN_TYPE:
            return fail("invalid_request", f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
        if form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES:
            return fail("invalid_request", "unsupported subject_token_type")
        if not form.get("scope", "").strip():
            return fail("invalid_scope", "scope is required")
        match = AUDIENCE.fullmatch(form.get("audience", ""))
        if match is None:
            return fail("invalid_request", "audience must be the provider's full resource name")
        if match.group(1) != PROVIDER:
            return fail(
                "invalid_target",
                'The target service indicated by the "audience" parameters is invalid.',
            )
        try:
            header = jwt.get_unverified_header(form.get("subject_token", ""))
            key = self.keys[header.get("kid", "")]
            claims = jwt.decode(
                form["subject_token"],
                key.key,
                algorithms=["RS256"],
                audience=f"https://iam.googleapis.com/{PROVIDER}",
                issuer=self.issuer_url,
            )
        except (jwt.PyJWTError, KeyError) as exc:
            return fail("invalid_grant", f"The subject token is invalid: {exc}")
        if claims.get("repository") != self.repository:
            return fail(
                "invalid_grant", "The given credential is rejected by the attribute condition."
            )
        principal = f"principal://iam.googleapis.com/{POOL}/subject/{claims['sub']}"
        expires_in = int(min(MAX_FEDERATED_SECONDS, claims["exp"] - time.time()))
        token = "sbx-fed." + secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = _Issued(principal, time.time() + expires_in, claims["repository"])
        return 200, {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": expires_in,
        }

    # -- IAM Credentials -------------------------------------------------------------------

    def generate(self, email: str, bearer: str, body: Any) -> tuple[int, dict[str, Any]]:
        def fail(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
            return code, {"error": {"code": code, "message": message, "status": status}}

        with self._lock:
            federated = self.tokens.get(bearer)
        if federated is None or federated.email is not None or federated.expires < time.time():
            return fail(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if self.impersonators.get(email) != federated.repository:
            return fail(
                403,
                "PERMISSION_DENIED",
                "Permission 'iam.serviceAccounts."
                "getAccessToken' denied on resource (or it may not exist).",
            )
        if not isinstance(body, dict):
            return fail(400, "INVALID_ARGUMENT", "the body must be a JSON object")
        scopes = body.get("scope")
        if (
            not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) and s for s in scopes)
        ):
            return fail(400, "INVALID_ARGUMENT", "scope must be a non-empty list")
        lifetime = re.fullmatch(r"(\d+)s", str(body.get("lifetime", "3600s")))
        if lifetime is None or not 1 <= int(lifetime.group(1)) <= MAX_LIFETIME_SECONDS:
            return fail(400, "INVALID_ARGUMENT", "lifetime must be between 1s and 3600s")
        expires = int(time.time()) + int(lifetime.group(1))
        token = "ya29.sbx-" + secrets.token_urlsafe(40)
        with self._lock:
            self.tokens[token] = _Issued(
                federated.principal, expires, federated.repository, email=email, scopes=scopes
            )
        expire_time = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 200, {"accessToken": token, "expireTime": expire_time}

    def tokeninfo(self, token: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            issued = self.tokens.get(token)
        left = int(issued.expires - time.time()) if issued else 0
        if issued is None or left <= 0:
            return 400, {"error": "invalid_token", "error_description": "Invalid Value"}
        if issued.email is None:
            return 200, {"sub": issued.principal, "expires_in": left}
        return 200, {
            "email": issued.email,
            "expires_in": left,
            "scope": " ".join(issued.scopes),
            "principal": issued.principal,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parts.query)
                if parts.path == "/tokeninfo":
                    self.send_json(*emulator.tokeninfo(query.get("access_token", [""])[0]))
                elif parts.path == "/__sandbox/requests":
                    with emulator._lock:
                        self.send_json(200, list(emulator.requests))
                else:
                    self.send_json(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode("utf-8", "replace")
                # Header names are case-insensitive; google-auth sends some in lowercase.
                headers = {k.title(): v for k, v in self.headers.items()}
                path = urllib.parse.urlsplit(self.path).path
                if path == "/v1/token":
                    form = _token_request(raw, headers.get("Content-Type", ""))
                    emulator._record("POST", path, headers, form)
                    self.send_json(*emulator.exchange(form))
                    return
                match = GENERATE.fullmatch(path)
                if match is None:
                    self.send_json(404, {"error": "not found"})
                    return
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = None
                emulator._record("POST", path, headers, body)
                scheme, _, bearer = headers.get("Authorization", "").partition(" ")
                self.send_json(
                    *emulator.generate(
                        urllib.parse.unquote(match.group(1)),
                        bearer if scheme.lower() == "bearer" else "",
                        body,
                    )
                )

        return Handler


class GcpSandbox:
    """The emulator as the sandbox runs it: STS and IAM Credentials on one port."""

    def __init__(self, issuer: OidcIssuer) -> None:
        self.emulator = GcpEmulator(issuer.url, issuer.jwks(), issuer.run.repository)

    def start(self) -> None:
        self.emulator.start()

    def stop(self) -> None:
        self.emulator.stop()

    def environ(self) -> dict[str, str]:
        return {
            "NHI_GCP_STS_ENDPOINT": self.emulator.url,
            "NHI_GCP_IAMCREDENTIALS_ENDPOINT": self.emulator.url,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "gcp_endpoint": self.emulator.url,
            "gcp_provider": PROVIDER,
            "gcp_service_account": SERVICE_ACCOUNT,
            "gcp_denied_service_account": DENIED_SERVICE_ACCOUNT,
        }

    def announce(self) -> str:
        return (
            f"GCP STS + IAM Credentials at {self.emulator.url} (provider {PROVIDER}, "
            f"service account {SERVICE_ACCOUNT})"
        )

    def given(self, request: SandboxRequest) -> dict[str, Any]:
        return {"gcp_provider": PROVIDER, "gcp_service_account": SERVICE_ACCOUNT}


def create(issuer: OidcIssuer) -> GcpSandbox:
    return GcpSandbox(issuer)

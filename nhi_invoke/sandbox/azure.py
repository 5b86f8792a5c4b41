"""An embedded Microsoft Entra ID token endpoint over TLS, for workload identity federation.

It serves what azure-identity and MSAL call for a custom authority host (docs/azure.md):
- `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant whose `client_assertion`
  is an OIDC token. Checked as Entra checks it: the tenant, the application, a federated
  identity credential matching `iss`, `aud` and `sub` exactly, the issuer's RS256 signature
  (keys found through the issuer's OIDC discovery), the assertion's lifetime, and a scope
  `<resource>/.default` of a known resource. Answers with an RS256 access token carrying
  Entra's v1 or v2 claims, or with Entra's error body (`entra_errors`).
- `GET /{tenant}/v2.0/.well-known/openid-configuration`, `/{tenant}/discovery/v2.0/keys`,
  `/common/discovery/instance`: the discovery MSAL does before it asks for a token.
- `GET /__sandbox/whoami[?audience=…]`: a resource that checks a bearer token and returns its
  claims, so a command can prove which identity it holds; `GET /subscriptions`: ARM's list,
  with the sandbox subscription, for a management token.
- `GET /__sandbox/requests`: every request received; assertions only as fingerprint and claims.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from nhi_invoke.oidc import fingerprint
from nhi_invoke.sandbox import entra_errors as refuse
from nhi_invoke.sandbox.entra_directory import (
    JWT_BEARER,
    Application,
    Directory,
    FederatedCredential,
    Resource,
    Tenant,
    sandbox_directory,
)
from nhi_invoke.sandbox.entra_discovery import IssuerKeys, instance_metadata, openid_configuration
from nhi_invoke.sandbox.entra_errors import EntraRefusal
from nhi_invoke.sandbox.entra_resource import ResourceApi
from nhi_invoke.sandbox.loopback import LoopbackService
from nhi_invoke.sandbox.tls import ServerTls, TlsJsonHandler, throwaway_tls

TOKEN_LIFETIME_SECONDS = 3599  # what Entra's client-credentials answers show


def sandbox_entra(issuer_url: str, subject: str) -> EntraEmulator:
    """The sandbox's Entra: its deployer app federates `subject` from the sandbox issuer."""
    return EntraEmulator(sandbox_directory([(issuer_url, subject)]))


@dataclass(frozen=True)
class SeenAssertion:
    """A client assertion as recorded: never the token, only what names it."""

    fingerprint: str
    claims: dict[str, Any] | None  # iss, sub, aud, jti, exp; None when it did not parse


@dataclass(frozen=True)
class EntraRequest:
    """One request the emulator answered, for the tests."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    assertion: SeenAssertion | None
    client_request_id: str | None
    ms_client_request_id: str | None
    client_sku: str | None
    client_ver: str | None
    user_agent: str | None
    correlation_id: str
    status: int
    error_codes: tuple[int, ...] = ()
    token_fingerprint: str | None = None


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]
    refusal: EntraRefusal | None = None
    token: str | None = None
    assertion: SeenAssertion | None = None

    @classmethod
    def refused(cls, refusal: EntraRefusal, assertion: SeenAssertion | None = None) -> _Answer:
        return cls(refusal.status, {}, refusal, assertion=assertion)


class EntraEmulator(LoopbackService):
    """The Entra emulator on https://127.0.0.1 at a free port, in a background thread."""

    def __init__(
        self,
        directory: Directory,
        tls: ServerTls | None = None,
        token_lifetime: int = TOKEN_LIFETIME_SECONDS,
        legacy_fic_errors: bool = False,
    ) -> None:
        self.directory = directory
        self.token_lifetime = token_lifetime
        # Entra answered every federated-credential mismatch with AADSTS70021 until it split
        # them into 700211/700212/700213 by claim; both still show up in users' logs.
        self.legacy_fic_errors = legacy_fic_errors
        self._folder: str | None = None
        if tls is None:
            self._folder = tempfile.mkdtemp(prefix="nhi-entra-")
            tls = throwaway_tls(self._folder)
        self.tls = tls
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_urlsafe(20)
        self._issuer_keys = IssuerKeys()
        self.resource = ResourceApi(self._key.public_key(), self.issuer_v2)
        self._requests: list[EntraRequest] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        """The authority host, as `AZURE_AUTHORITY_HOST` or `authority=` takes it."""
        return super().url.replace("http://", "https://", 1)

    @property
    def ca_file(self) -> str:
        return self.tls.ca_file

    def stop(self) -> None:
        super().stop()
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)

    def requests(self) -> list[EntraRequest]:
        with self._lock:
            return list(self._requests)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [public | {"kid": self.key_id, "x5t": self.key_id, "use": "sig"}]}

    # -- the token endpoint ----------------------------------------------------------------

    def token(self, tenant_name: str, form: dict[str, str]) -> _Answer:
        seen = _seen(form.get("client_assertion"))
        try:
            token, expires_in = self._issue(tenant_name, form)
        except EntraRefusal as refusal:
            return _Answer.refused(refusal, seen)
        body = {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": token,
        }
        return _Answer(200, body, token=token, assertion=seen)

    def _issue(self, tenant_name: str, form: dict[str, str]) -> tuple[str, int]:
        tenant = self.directory.tenant(tenant_name)
        if tenant is None:
            raise refuse.tenant_not_found(tenant_name)
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name):
                raise refuse.missing_parameter(name)
        if form["grant_type"] != "client_credentials":
            raise refuse.unsupported_grant_type(form["grant_type"])
        app = tenant.application(form["client_id"])
        if app is None:
            raise refuse.application_not_found(form["client_id"], tenant.display_name)
        if app.blocked:
            raise refuse.sign_in_blocked()
        assertion = form.get("client_assertion", "")
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            raise refuse.assertion_missing()
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise refuse.assertion_malformed() from exc
        credential = self._federated_credential(app, claims)
        key = self._issuer_keys.key(credential.issuer, str(header.get("kid", "")))
        try:
            jwt.decode(
                assertion,
                key.key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            raise refuse.bad_signature() from exc
        now = time.time()
        expiry, not_before = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(expiry, int | float) or not isinstance(not_before, int | float):
            raise refuse.assertion_malformed()
        if not not_before <= now < expiry:
            raise refuse.assertion_out_of_time(now, not_before, expiry)
        resource, requested = self._resource(form["scope"], tenant)
        return self._access_token(tenant, app, resource, requested), self.token_lifetime

    def _federated_credential(
        self, app: Application, claims: dict[str, Any]
    ) -> FederatedCredential:
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        presented = claims.get("aud", "")
        audiences = {str(a) for a in presented} if isinstance(presented, list) else {str(presented)}
        by_issuer = [c for c in app.federated_credentials if c.issuer == issuer]
        by_audience = [c for c in by_issuer if audiences & set(c.audiences)]
        by_subject = [c for c in by_audience if c.subject == subject]
        if by_subject:
            return by_subject[0]
        if self.legacy_fic_errors:
            raise refuse.no_federated_match(issuer, subject, ", ".join(sorted(audiences)))
        if not by_issuer:
            raise refuse.no_issuer_match(issuer)
        if not by_audience:
            raise refuse.no_audience_match(", ".join(sorted(audiences)))
        if any(c.subject.lower() == subject.lower() for c in by_audience):
            raise refuse.subject_case_mismatch(subject)
        raise refuse.no_subject_match(subject)

    def _resource(self, scope: str, tenant: Tenant) -> tuple[Resource, str]:
        scopes = scope.split()
        if not all(s.endswith("/.default") for s in scopes):
            raise refuse.scope_not_default(scope)
        if len(scopes) != 1:
            raise refuse.scope_invalid(scope)
        requested = scopes[0][: -len("/.default")]
        resource = next((r for r in self.directory.resources if r.accepts(requested)), None)
        if resource is None:
            raise refuse.resource_not_found(requested, tenant.display_name)
        return resource, requested

    def _access_token(
        self, tenant: Tenant, app: Application, resource: Resource, requested: str
    ) -> str:
        now = int(time.time())
        tid = tenant.tenant_id
        claims: dict[str, Any] = {
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "aio": secrets.token_urlsafe(24),
            "idtyp": "app",
            "oid": app.object_id,
            "rh": secrets.token_urlsafe(24),
            "sub": app.object_id,
            "tid": tid,
            "uti": secrets.token_urlsafe(16),
        }
        if resource.token_version == 1:
            v1_issuer = f"https://sts.windows.net/{tid}/"
            claims |= {"aud": requested, "iss": v1_issuer, "idp": v1_issuer, "ver": "1.0"}
            claims |= {"appid": app.client_id, "appidacr": "2"}  # 2: a client assertion
        else:
            claims |= {"aud": resource.app_id, "iss": self.issuer_v2(tid), "ver": "2.0"}
            claims |= {"azp": app.client_id, "azpacr": "2"}
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.key_id, "x5t": self.key_id}
        )

    def issuer_v2(self, tenant_id: str) -> str:
        return f"{self.url}/{tenant_id}/v2.0"

    # -- HTTP ------------------------------------------------------------------------------

    def _discovery(self, parts: list[str], query: dict[str, str]) -> _Answer:
        if parts[1:] == ["discovery", "instance"]:
            found = instance_metadata(self.url, query.get("authorization_endpoint", ""))
            if found is None:
                return _Answer.refused(refuse.unknown_instance())
            return _Answer(200, found)
        if parts[1:] in (["discovery", "v2.0", "keys"], ["discovery", "keys"]):
            return _Answer(200, self.jwks())
        tenant = self.directory.tenant(parts[0])
        if tenant is None:
            return _Answer.refused(refuse.tenant_not_found(parts[0]))
        return _Answer(200, openid_configuration(self.url, tenant.tenant_id))

    def _record(self, request: EntraRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(TlsJsonHandler):
            tls_context = emulator.tls.context

            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                authorization = self.headers.get("Authorization", "")
                if parts.path == "/__sandbox/requests":
                    self.send_json(200, [dataclasses.asdict(r) for r in emulator.requests()])
                elif parts.path == "/__sandbox/whoami":
                    audience = query.get("audience")
                    self.send_json(
                        *emulator.resource.whoami(authorization, [audience] if audience else None)
                    )
                elif parts.path == "/subscriptions":
                    self.send_json(*emulator.resource.subscriptions(authorization))
                elif _is_discovery(segments := parts.path.strip("/").split("/")):
                    self._answer(emulator._discovery(segments, query), query, {})
                else:
                    self.send_json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode("utf-8", "replace")
                parts = urllib.parse.urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                if len(segments) != 4 or segments[1:] != ["oauth2", "v2.0", "token"]:
                    self.send_json(404, {"error": "not_found"})
                    return
                form = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                self._answer(emulator.token(segments[0], form), {}, form)

            def _answer(self, answer: _Answer, query: dict[str, str], form: dict[str, str]) -> None:
                sent_id = self.headers.get("client-request-id")
                correlation, echoed = _correlation(sent_id)
                trace = str(uuid.uuid4())
                body = answer.body
                if answer.refusal is not None:
                    now = datetime.datetime.now(datetime.UTC)
                    body = answer.refusal.body(trace, correlation, now)
                # Recorded before the answer goes out: a client that has its answer can
                # count on finding its request in the record.
                emulator._record(
                    EntraRequest(
                        method=self.command,
                        path=urllib.parse.urlsplit(self.path).path,
                        query=query,
                        form={k: v for k, v in form.items() if k != "client_assertion"},
                        assertion=answer.assertion,
                        client_request_id=sent_id,
                        ms_client_request_id=self.headers.get("x-ms-client-request-id"),
                        client_sku=self.headers.get("x-client-SKU"),
                        client_ver=self.headers.get("x-client-Ver"),
                        user_agent=self.headers.get("User-Agent"),
                        correlation_id=correlation,
                        status=answer.status,
                        error_codes=(answer.refusal.code,) if answer.refusal else (),
                        token_fingerprint=fingerprint(answer.token) if answer.token else None,
                    )
                )
                data = json.dumps(body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store, no-cache")
                self.send_header("x-ms-request-id", trace)
                if echoed:
                    self.send_header("client-request-id", correlation)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _seen(assertion: str | None) -> SeenAssertion | None:
    if not assertion:
        return None
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return SeenAssertion(fingerprint(assertion), None)
    named: dict[str, Any] = {
        k: claims[k] for k in ("iss", "sub", "aud", "jti", "exp") if k in claims
    }
    return SeenAssertion(fingerprint(assertion), named)


def _correlation(client_request_id: str | None) -> tuple[str, bool]:
    """A GUID `client-request-id` (Entra's header holds a GUID) becomes the request's
    correlation id and is echoed; for anything else the emulator makes up its own."""
    try:
        return str(uuid.UUID(client_request_id or "")), True
    except ValueError:
        return str(uuid.uuid4()), False


def _is_discovery(segments: list[str]) -> bool:
    return len(segments) >= 2 and segments[1:] in (
        ["v2.0", ".well-known", "openid-configuration"],
        ["discovery", "instance"],
        ["discovery", "v2.0", "keys"],
        ["discovery", "keys"],
    )

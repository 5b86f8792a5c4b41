"""A local OIDC issuer: signs RS256 JWTs with GitHub-shaped claims, serves discovery and
JWKS, and answers GitHub's token-request protocol (`?api-version=2.0&audience=…`, bearer)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from nhi_invoke.sandbox.loopback import JsonHandler, LoopbackService

KEY_ID = "nhi-sandbox-1"
TOKEN_LIFETIME_SECONDS = 300  # GitHub's tokens live about five minutes
TOKEN_PATH = "/_apis/idtoken"


@dataclass(frozen=True)
class GitHubRun:
    """The run the issuer vouches for; the same values go into the runner's variables."""

    repository: str = "nhi-sandbox/demo"
    run_id: str = "1000001"
    run_attempt: str = "1"
    job: str = "deploy"
    ref: str = "refs/heads/main"
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    actor: str = "sandbox-user"
    workflow_file: str = ".github/workflows/deploy.yml"
    extra_claims: dict[str, Any] = field(default_factory=dict)

    @property
    def workflow_ref(self) -> str:
        return f"{self.repository}/{self.workflow_file}@{self.ref}"

    def claims(self, issuer: str, audience: str, now: int) -> dict[str, Any]:
        return {
            "jti": str(uuid.uuid4()),
            "sub": f"repo:{self.repository}:ref:{self.ref}",
            "aud": audience,
            "ref": self.ref,
            "sha": self.sha,
            "repository": self.repository,
            "repository_owner": self.repository.split("/")[0],
            "run_id": self.run_id,
            "run_number": "1",
            "run_attempt": self.run_attempt,
            "actor": self.actor,
            "workflow": "deploy",
            "workflow_ref": self.workflow_ref,
            "job_workflow_ref": self.workflow_ref,
            "event_name": "push",
            "ref_type": "branch",
            "runner_environment": "self-hosted",
            "iss": issuer,
            "nbf": now - 5,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
        } | self.extra_claims

    def runner_environment(self) -> dict[str, str]:
        return {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_RUN_ID": self.run_id,
            "GITHUB_RUN_ATTEMPT": self.run_attempt,
            "GITHUB_JOB": self.job,
            "GITHUB_ACTION": "__run",
            "GITHUB_REF": self.ref,
            "GITHUB_SHA": self.sha,
            "GITHUB_ACTOR": self.actor,
            "GITHUB_WORKFLOW_REF": self.workflow_ref,
            "GITHUB_EVENT_NAME": "push",
        }


class OidcIssuer(LoopbackService):
    """The issuer, on 127.0.0.1 at a free port, in a background thread."""

    def __init__(self, run: GitHubRun | None = None) -> None:
        self.run = run or GitHubRun()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.request_token = secrets.token_urlsafe(24)
        self.audiences_requested: list[str] = []
        super().__init__(self._handler())

    @property
    def request_url(self) -> str:
        return f"{self.url}{TOKEN_PATH}?api-version=2.0"

    def mint(self, audience: str, **overrides: Any) -> str:
        """A signed token for `audience`, as the runner would hand out."""
        claims = self.run.claims(self.url, audience, int(time.time())) | overrides
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KEY_ID})

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [public | {"kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": sorted(self.run.claims(self.url, "x", 0)),
            "scopes_supported": ["openid"],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    self.send_json(200, issuer.discovery())
                elif parts.path == "/.well-known/jwks":
                    self.send_json(200, issuer.jwks())
                elif parts.path == "/__sandbox/audiences":
                    self.send_json(200, {"audiences": list(issuer.audiences_requested)})
                elif parts.path == TOKEN_PATH:
                    self._token(urllib.parse.parse_qs(parts.query))
                else:
                    self.send_json(404, {"message": "not found"})

            def _token(self, query: dict[str, list[str]]) -> None:
                scheme, _, presented = self.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not secrets.compare_digest(
                    presented, issuer.request_token
                ):
                    self.send_json(401, {"message": "bad request token"})
                    return
                if query.get("api-version") != ["2.0"]:
                    self.send_json(400, {"message": "api-version=2.0 is required"})
                    return
                audience = query.get("audience", ["https://github.com/" + issuer.run.repository])
                issuer.audiences_requested.append(audience[0])
                self.send_json(200, {"count": 1, "value": issuer.mint(audience[0])})

        return Handler

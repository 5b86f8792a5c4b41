"""The GCP broker: Workload Identity Federation, then service-account impersonation.

Two explicit steps with the real google-auth client, so that each credential is recorded the
moment it exists: the federated token from STS (the OIDC token exchanged for the provider's
audience), then a short-lived service-account token from IAM Credentials'
`generateAccessToken`, with the lifetime and the scopes always sent. Without a service
account, the federated token itself is what the command gets.

GCP has no caller-chosen session name and these tokens cannot be revoked: nhi-invoke keeps
them short, names the invocation in `X-Goog-Request-Reason`, and records them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nhi_invoke import oidc
from nhi_invoke.brokers.gcp.plan import GcpPlan
from nhi_invoke.brokers.grants import (
    CHILD,
    ENTRY,
    Grant,
    GrantRecorder,
    Release,
    Secret,
    TokenSupplier,
    expiring,
)
from nhi_invoke.brokers.interface import CredentialBroker
from nhi_invoke.errors import ConfigError, RefusedError, UnavailableError
from nhi_invoke.retry import Retryable, RetryOutcome, RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    from nhi_invoke.brokers.gcp.transport import ReasonedRequest
    from nhi_invoke.brokers.serving import CurrentGrant, Endpoint

T = TypeVar("T")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a type name
# Shown when a refusal's body says which check failed.
_DETAIL_LIMIT = 300


def server_said(exc: Exception) -> str:
    """What Google answered, in words, from a google-auth error: its arguments carry the
    response body as text (`('Unable to acquire impersonated credentials', '{"error": …}')`),
    whose JSON says it plainly."""
    texts = [arg for arg in getattr(exc, "args", ()) if isinstance(arg, str)]
    for text in reversed(texts):
        try:
            body = json.loads(text)
        except ValueError:
            continue
        if not isinstance(body, dict):
            continue
        error = body.get("error")
        if isinstance(error, dict):  # Google APIs: {"error": {"code", "message", "status"}}
            status, message = error.get("status"), error.get("message")
            return " ".join((f"{status}: {message}" if status else str(message)).split())
        if isinstance(error, str):  # OAuth 2.0: {"error", "error_description"}
            description = body.get("error_description")
            return " ".join(f"{error}: {description}".split()) if description else error
    return " ".join((texts[0] if texts else str(exc)).split())


def _expiry(credentials: Credentials) -> datetime:
    # google-auth keeps expiries as naive UTC datetimes.
    expiry = credentials.expiry
    if not isinstance(expiry, datetime):
        raise Retryable("GCP answered a token without an expiry")
    return expiry.replace(tzinfo=UTC)


def _token_env(token: Secret) -> dict[str, Secret]:
    # gcloud reads the first, Terraform's google provider the second.
    return {"CLOUDSDK_AUTH_ACCESS_TOKEN": token, "GOOGLE_OAUTH_ACCESS_TOKEN": token}


class GcpBroker(CredentialBroker):
    """Issues one invocation's GCP access token."""

    def __init__(self, plan: GcpPlan, policy: RetryPolicy) -> None:
        self.plan = plan
        self.policy = policy
        self.retries = RetryOutcome()

    def issue(self, token: TokenSupplier, record: GrantRecorder) -> Grant:
        from nhi_invoke.brokers.gcp.transport import ReasonedRequest  # noqa: PLC0415

        subject = token(False)
        request = ReasonedRequest(self.plan.request_reason)
        claims = oidc.decode_unverified(subject).recorded()
        principal = f"principal://iam.googleapis.com/{self.plan.pool}/subject/{claims.get('sub')}"
        federated = self._with_retries(
            lambda: self._exchange(subject, request),
            "the GCP STS token exchange",
            request,
            claims,
        )
        federated_token = Secret(str(federated.token))
        account = self.plan.service_account
        handed_over = account is None
        first = Grant(
            broker=self.plan.broker,
            purpose=CHILD if handed_over else ENTRY,
            principal=principal,
            principal_id=None,
            session_name=None,
            access_key_id=None,
            expires_at=_expiry(federated),
            fingerprint=federated_token.fingerprint,
            environment=_token_env(federated_token) if handed_over else {},
            hidden=() if handed_over else (federated_token,),
            details=self._details(kind="federated", federated_principal=principal),
        )
        record(first)
        if account is None:
            return first
        impersonated = self._with_retries(
            lambda: self._impersonate(federated, account, request),
            "generateAccessToken",
            request,
            claims,
        )
        access_token = Secret(str(impersonated.token))
        grant = Grant(
            broker=self.plan.broker,
            purpose=CHILD,
            principal=account,
            principal_id=None,
            session_name=None,
            access_key_id=None,
            expires_at=_expiry(impersonated),
            fingerprint=access_token.fingerprint,
            environment=_token_env(access_token),
            details=self._details(kind="service_account", federated_principal=principal),
        )
        record(grant)
        return grant

    def release(
        self, grant: Grant, ended_at: datetime, token: TokenSupplier, record: GrantRecorder
    ) -> Release:
        # GCP access tokens, federated or service-account, cannot be revoked: they expire.
        return expiring(grant, ended_at, reason="GCP access tokens cannot be revoked")

    def endpoint(self, grant: CurrentGrant) -> Endpoint:
        from nhi_invoke.brokers.gcp.metadata import MetadataServer  # noqa: PLC0415

        return MetadataServer(grant, self.plan)

    def private_configuration(
        self, folder: Callable[[], Path], environ: Mapping[str, str], served: bool
    ) -> dict[str, str]:
        # Both modes: gcloud caches tokens and logs output in its folder, and the runner's
        # folder holds the runner's account and ADC file.
        from nhi_invoke.brokers.gcp import gcloud_config  # noqa: PLC0415

        return gcloud_config.write(folder(), environ)

    def _details(self, **extra: Any) -> dict[str, Any]:
        return {
            "provider": self.plan.provider,
            "scopes": list(self.plan.scopes),
            "lifetime_seconds": self.plan.lifetime_seconds,
            "request_reason": self.plan.request_reason,
            **extra,
        }

    def _exchange(self, subject: str, request: ReasonedRequest) -> Credentials:
        from google.auth import identity_pool  # noqa: PLC0415 - google-auth only for GCP

        class Subject(identity_pool.SubjectTokenSupplier):
            def get_subject_token(self, context: Any, request: Any) -> str:
                return subject

        credentials = identity_pool.Credentials(
            audience=self.plan.sts_audience,
            subject_token_type=JWT_TOKEN_TYPE,
            token_url=f"{self.plan.sts_endpoint}/v1/token",
            subject_token_supplier=Subject(),
            # Impersonation needs cloud-platform on the federated token; without it, the
            # federated token is the command's and carries the scopes asked for.
            scopes=[CLOUD_PLATFORM] if self.plan.service_account else list(self.plan.scopes),
        )
        credentials.refresh(request)
        return credentials

    def _impersonate(
        self, federated: Credentials, account: str, request: ReasonedRequest
    ) -> Credentials:
        from google.auth import impersonated_credentials  # noqa: PLC0415
        from google.oauth2.credentials import Credentials as BearerToken  # noqa: PLC0415

        # The federated token as a plain bearer. Given the identity_pool credentials
        # themselves, google-auth re-scopes a copy and runs the STS exchange again, minting a
        # second federated token that nobody would record. Without an expiry it is never
        # "stale", so google-auth will not try to refresh it either.
        source = BearerToken(token=federated.token)
        credentials = impersonated_credentials.Credentials(
            source_credentials=source,
            target_principal=account,
            # Always sent: without scopes google-auth sends "scope": null, which IAM rejects.
            target_scopes=list(self.plan.scopes),
            lifetime=self.plan.lifetime_seconds,
            delegates=[],
            iam_endpoint_override=(
                f"{self.plan.iamcredentials_endpoint}/v1/projects/-/serviceAccounts/"
                f"{account}:generateAccessToken"
            ),
        )
        credentials.refresh(request)
        return credentials

    def _with_retries(
        self, call: Callable[[], T], what: str, request: ReasonedRequest, claims: dict[str, Any]
    ) -> T:
        import google.auth.exceptions  # noqa: PLC0415

        def attempt() -> T:
            try:
                return call()
            except google.auth.exceptions.GoogleAuthError as exc:
                raise self._classify(exc, what, request, claims) from exc

        return call_with_retries(
            attempt,
            self.policy,
            outcome=self.retries,
            on_give_up=lambda failure, tries: UnavailableError(
                f"{what} failed after {tries} tries: {failure.what}",
                "check that the GCP endpoints are reachable, then re-run",
            ),
        )

    def _classify(
        self, exc: Exception, what: str, request: ReasonedRequest, claims: dict[str, Any]
    ) -> Exception:
        status = request.last_status
        if status is None or status == 429 or status >= 500:
            return Retryable(
                f"{type(exc).__name__} from {what}" + (f" (HTTP {status})" if status else ""), exc
            )
        detail = server_said(exc)[:_DETAIL_LIMIT]
        shown = ", ".join(
            f"{k}={claims[k]!r}" for k in ("sub", "aud", "repository", "ref") if k in claims
        )
        token = f" (token {shown})" if shown else ""
        if what == "generateAccessToken":
            if status == 400:
                return ConfigError(
                    f"IAM Credentials rejected the request: HTTP {status} {detail}",
                    "check --gcp-scope and --gcp-lifetime",
                )
            return RefusedError(
                f"IAM Credentials refused to mint a token for {self.plan.service_account}: "
                f"HTTP {status} {detail}{token}",
                f"grant roles/iam.workloadIdentityUser on {self.plan.service_account} to "
                f"principalSet://iam.googleapis.com/{self.plan.pool}/attribute.repository/"
                f"{claims.get('repository', '<owner/repo>')}",
            )
        return RefusedError(
            f"GCP STS refused the token for {self.plan.provider}: HTTP {status} {detail}{token}",
            "check the provider's allowed audiences, issuer and attribute condition against "
            "these claims",
        )

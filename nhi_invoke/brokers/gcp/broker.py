"""The GCP broker: Workload Identity Federation, then service-account impersonation.

Two explicit steps, each credential recorded the moment it exists: the federated token from
STS (the OIDC token exchanged for the provider's audience), then a short-lived
service-account token from IAM Credentials' `generateAccessToken`, with the lifetime and the
scopes always sent. Without a service account, the federated token itself is what the command
gets. Both requests are sent by `exchange.py` through the HTTP seam, built as google-auth
builds them (a test holds them equal), without importing google-auth.

GCP has no caller-chosen session name and these tokens cannot be revoked: nhi-invoke keeps
them short, names the invocation in `X-Goog-Request-Reason`, and records them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
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
from nhi_invoke.retry import RetryOutcome, RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from nhi_invoke.brokers.gcp.exchange import GcpAnswer
    from nhi_invoke.brokers.serving import CurrentGrant, Endpoint

T = TypeVar("T")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# Shown when a refusal's body says which check failed.
_DETAIL_LIMIT = 300


def server_said(body: str) -> str:
    """What Google answered, in words: the JSON of an error body says it plainly."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        error = answer.get("error")
        if isinstance(error, dict):  # Google APIs: {"error": {"code", "message", "status"}}
            status, message = error.get("status"), error.get("message")
            return " ".join((f"{status}: {message}" if status else str(message)).split())
        if isinstance(error, str):  # OAuth 2.0: {"error", "error_description"}
            description = answer.get("error_description")
            return " ".join(f"{error}: {description}".split()) if description else error
    return " ".join(body.split())


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
        from nhi_invoke.brokers.gcp import exchange  # noqa: PLC0415

        plan = self.plan
        subject = token(False)
        claims = oidc.decode_unverified(subject).recorded()
        principal = f"principal://iam.googleapis.com/{self.plan.pool}/subject/{claims.get('sub')}"
        federated = self._with_retries(
            lambda: exchange.exchange_token(
                plan.sts_endpoint,
                plan.sts_audience,
                subject,
                # Impersonation needs cloud-platform on the federated token; without it, the
                # federated token is the command's and carries the scopes asked for.
                (CLOUD_PLATFORM,) if plan.service_account else plan.scopes,
                plan.request_reason,
            ),
            "the GCP STS token exchange",
            claims,
        )
        federated_token = Secret(federated.token)
        account = self.plan.service_account
        handed_over = account is None
        first = Grant(
            broker=self.plan.broker,
            purpose=CHILD if handed_over else ENTRY,
            principal=principal,
            principal_id=None,
            session_name=None,
            access_key_id=None,
            expires_at=federated.expires_at,
            fingerprint=federated_token.fingerprint,
            environment=_token_env(federated_token) if handed_over else {},
            hidden=() if handed_over else (federated_token,),
            details=self._details(kind="federated", federated_principal=principal),
        )
        record(first)
        if account is None:
            return first
        impersonated = self._with_retries(
            # The lifetime and the scopes always sent: IAM rejects "scope": null.
            lambda: exchange.generate_access_token(
                plan.iamcredentials_endpoint,
                account,
                federated.token,
                plan.scopes,
                plan.lifetime_seconds,
                plan.request_reason,
            ),
            "generateAccessToken",
            claims,
        )
        access_token = Secret(impersonated.token)
        grant = Grant(
            broker=self.plan.broker,
            purpose=CHILD,
            principal=account,
            principal_id=None,
            session_name=None,
            access_key_id=None,
            expires_at=impersonated.expires_at,
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

        return gcloud_config.write(folder(), environ, served=served)

    def _details(self, **extra: Any) -> dict[str, Any]:
        return {
            "provider": self.plan.provider,
            "scopes": list(self.plan.scopes),
            "lifetime_seconds": self.plan.lifetime_seconds,
            "request_reason": self.plan.request_reason,
            **extra,
        }

    def _with_retries(self, call: Callable[[], T], what: str, claims: dict[str, Any]) -> T:
        from nhi_invoke.brokers.gcp.exchange import GcpAnswer  # noqa: PLC0415

        def attempt() -> T:
            try:
                return call()
            except GcpAnswer as answer:
                raise self._refused(answer, what, claims) from answer

        return call_with_retries(
            attempt,
            self.policy,
            outcome=self.retries,
            on_give_up=lambda failure, tries: UnavailableError(
                f"{what} failed after {tries} tries: {failure.what}",
                "check that the GCP endpoints are reachable, then re-run",
            ),
        )

    def _refused(self, answer: GcpAnswer, what: str, claims: dict[str, Any]) -> Exception:
        """A 4xx answer (transient ones are retried by `exchange.py`) as the documented error."""
        status = answer.status
        detail = server_said(answer.body)[:_DETAIL_LIMIT]
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

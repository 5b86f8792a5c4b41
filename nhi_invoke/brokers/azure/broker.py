"""The Azure broker: workload identity federation with Microsoft Entra ID.

Each token is one client-credentials grant at `{authority}/{tenant}/oauth2/v2.0/token` with
the pipeline's OIDC token as the client assertion. The first allowed scope is asked for before
the command starts (so a federation that does not work stops the run there); every other
token is minted when the command asks the managed-identity endpoint for it (`endpoint.py`),
only for an allowed scope. The OIDC token is reused while it has more than a minute left and
fetched fresh from the CI after that, so a long step never presents an expired assertion
(AADSTS700024). Each token is recorded the moment it exists; none can be revoked.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from nhi_invoke import oidc
from nhi_invoke.brokers.azure import exchange
from nhi_invoke.brokers.azure.plan import AzurePlan
from nhi_invoke.brokers.azure.refusals import EXPIRED, Attempt, EntraError, refusal
from nhi_invoke.brokers.grants import (
    CHILD,
    Grant,
    GrantRecorder,
    Release,
    TokenSupplier,
    expiring,
)
from nhi_invoke.brokers.interface import CredentialBroker
from nhi_invoke.errors import UnavailableError
from nhi_invoke.retry import RetryOutcome, RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from nhi_invoke.brokers.serving import CurrentGrant, Endpoint

# An OIDC token with less left than this is not presented: Entra allows no clock leeway.
ASSERTION_MARGIN_SECONDS = 60


class AzureBroker(CredentialBroker):
    """Issues one invocation's Entra access tokens, one per resource asked for."""

    def __init__(self, plan: AzurePlan, policy: RetryPolicy) -> None:
        self.plan = plan
        self.policy = policy
        self.retries = RetryOutcome()
        self._assertion: tuple[str, float] | None = None  # the token and its `exp`
        self._lock = threading.Lock()

    def issue(self, tokens: TokenSupplier, record: GrantRecorder) -> Grant:
        return self.mint(self.plan.first_scope, tokens, record)

    def mint(self, scope: str, tokens: TokenSupplier, record: GrantRecorder) -> Grant:
        """A token for `scope` (already checked against the allowed ones), recorded."""
        assertion, fetched = self._assertion_for(tokens, force=False)
        answer = self._request(scope, assertion)
        if isinstance(answer, EntraError) and answer.code == EXPIRED and not fetched:
            # Entra's clock says the reused token is spent: one fresh try.
            assertion, _ = self._assertion_for(tokens, force=True)
            answer = self._request(scope, assertion)
        claims = oidc.decode_unverified(assertion).recorded()
        if isinstance(answer, EntraError):
            plan = self.plan
            raise refusal(
                answer, Attempt(plan.client_id, plan.tenant_id, plan.audience, scope, claims)
            )
        grant = Grant(
            broker=self.plan.broker,
            purpose=CHILD,
            principal=self.plan.client_id,
            principal_id=_text(answer.claims.get("oid")),
            session_name=None,
            access_key_id=None,
            expires_at=answer.expires_at,
            fingerprint=answer.token.fingerprint,
            hidden=(answer.token,),
            details={
                "resource": scope.removesuffix("/.default"),
                "scope": scope,
                "tenant_id": _text(answer.claims.get("tid")) or self.plan.tenant_id,
                "object_id": _text(answer.claims.get("oid")),
                "token_id": _text(answer.claims.get("uti")),
                "token_audience": _text(answer.claims.get("aud")),
                "token_version": _text(answer.claims.get("ver")),
                "authority": self.plan.authority,
                "client_request_id": self.plan.client_request_id,
            },
        )
        record(grant)
        return grant

    def release(
        self, grant: Grant, ended_at: datetime, tokens: TokenSupplier, record: GrantRecorder
    ) -> Release:
        # Entra has no way to revoke one access token: it stays usable until it expires.
        return expiring(grant, ended_at, reason="Entra access tokens cannot be revoked")

    def private_configuration(
        self, folder: Callable[[], Path], environ: Mapping[str, str], served: bool
    ) -> dict[str, str]:
        # The Azure CLI's own folder, private (0700, in the invocation's folder) and empty:
        # `az` finds no job-wide login there, and what `az login --identity` writes goes
        # with the invocation's folder when it ends.
        return {"AZURE_CONFIG_DIR": str(folder())}

    def endpoint(self, grant: CurrentGrant) -> Endpoint:
        from nhi_invoke.brokers.azure.endpoint import ManagedIdentityEndpoint  # noqa: PLC0415

        return ManagedIdentityEndpoint(self, grant)

    def _assertion_for(self, tokens: TokenSupplier, *, force: bool) -> tuple[str, bool]:
        """The OIDC token to present, and whether it was fetched just now."""
        with self._lock:
            held = self._assertion
            if held is not None and not force and held[1] - time.time() > ASSERTION_MARGIN_SECONDS:
                return held[0], False
            token = tokens(held is not None)
            expiry = oidc.decode_unverified(token).payload.get("exp")
            self._assertion = (token, float(expiry) if isinstance(expiry, int | float) else 0.0)
            return token, True

    def _request(self, scope: str, assertion: str) -> exchange.EntraToken | EntraError:
        return call_with_retries(
            lambda: exchange.request(self.plan, scope, assertion),
            self.policy,
            outcome=self.retries,
            on_give_up=lambda failure, tries: UnavailableError(
                f"Entra's token endpoint {self.plan.token_url} failed after {tries} tries: "
                f"{failure.what}",
                "check that the authority is reachable (proxy, CA bundle), then re-run",
            ),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None

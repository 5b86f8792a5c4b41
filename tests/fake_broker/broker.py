"""The fake broker's runtime: issues a token from the fake service with the CI's OIDC token,
revokes it by its accessor; every request through `nhi_invoke.net`, as a real broker's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from nhi_invoke import net
from nhi_invoke.brokers.grants import (
    CHILD,
    Grant,
    GrantRecorder,
    Release,
    Secret,
    TokenSupplier,
    expiring,
)
from nhi_invoke.brokers.interface import CredentialBroker
from nhi_invoke.errors import RefusedError, UnavailableError
from nhi_invoke.retry import Retryable, RetryOutcome, RetryPolicy, call_with_retries
from tests.fake_broker.declaration import TOKEN_VARIABLE, FakePlan


class FakeBroker(CredentialBroker):
    def __init__(self, plan: FakePlan, policy: RetryPolicy) -> None:
        self.plan = plan
        self.policy = policy
        self.retries = RetryOutcome()

    def _post(self, path: str, body: dict[str, object], bearer: str | None = None) -> net.Response:
        headers = {"Content-Type": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"

        def attempt() -> net.Response:
            resp = net.request(
                "POST", self.plan.url + path, body=json.dumps(body).encode(), headers=headers
            )
            if resp.retryable:
                raise Retryable(f"HTTP {resp.status} from the fake service")
            return resp

        return call_with_retries(
            attempt,
            self.policy,
            outcome=self.retries,
            on_give_up=lambda failure, tries: UnavailableError(
                f"the fake service failed after {tries} tries: {failure.what}", "start it"
            ),
        )

    def issue(self, tokens: TokenSupplier, record: GrantRecorder) -> Grant:
        resp = self._post("/issue", {"lifetime": self.plan.lifetime_seconds}, tokens(False))
        answer = json.loads(resp.body)
        if resp.status != 200:
            raise RefusedError(f"the fake service refused: {answer.get('error')}", "allow it")
        token = Secret(answer["token"])
        grant = Grant(
            broker=self.plan.broker,
            purpose=CHILD,
            principal=f"fake:{answer['accessor']}",
            principal_id=answer["accessor"],
            session_name=None,
            access_key_id=None,
            expires_at=datetime.now(UTC) + timedelta(seconds=int(answer["expires_in"])),
            fingerprint=token.fingerprint,
            environment={TOKEN_VARIABLE: token},
            details={"service": self.plan.url},
        )
        record(grant)
        return grant

    def release(
        self, grant: Grant, ended_at: datetime, tokens: TokenSupplier, record: GrantRecorder
    ) -> Release:
        try:
            resp = self._post("/revoke", {"accessor": grant.principal_id})
        except UnavailableError as error:
            return expiring(grant, ended_at, error=error)
        if resp.status != 200:
            return expiring(grant, ended_at, reason=f"the service answered {resp.status}")
        exposure = max(0.0, (datetime.now(UTC) - ended_at).total_seconds())
        return Release(self.plan.revocation, round(exposure, 3), {"accessor": grant.principal_id})

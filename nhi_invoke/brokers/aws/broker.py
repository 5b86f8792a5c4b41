"""The AWS broker: web identity into a role, optionally chained into a second with tags.

Single hop: `AssumeRoleWithWebIdentity` through the lean query client. Chained: an
`AssumeRole` into the target, signed as the entry session by botocore's SigV4 signer (imported
only then) and sent by the same lean client. Errors are classified once: retry what is
transient, refresh the OIDC token once on token errors, fail at once (exit 77) on refusals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from nhi_invoke import oidc
from nhi_invoke.brokers.aws.plan import REVOCATION_DENY_POLICY, AwsPlan, role_name
from nhi_invoke.brokers.aws.sts_query import (
    CONFIG_CODES,
    TOKEN_CODES,
    StsCredentials,
    StsError,
    assume_role,
    assume_role_fields,
    assume_role_with_web_identity,
    retryable,
)
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
from nhi_invoke.diagnostics import Log
from nhi_invoke.errors import ConfigError, NhiError, RefusedError, UnavailableError
from nhi_invoke.retry import Retryable, RetryOutcome, RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from nhi_invoke.brokers.aws.revoke import Revocation
    from nhi_invoke.brokers.serving import CurrentGrant, Endpoint

log = Log("aws")
# Re-mint the entry session for revocation when it has less than this left.
ENTRY_MARGIN_SECONDS = 60


def _now() -> datetime:
    return datetime.now(UTC)


T = TypeVar("T")


class _FreshTokenNeeded(Exception):
    def __init__(self, error: StsError) -> None:
        super().__init__(str(error))
        self.error = error


def _claims_hint(token: str) -> str:
    """The claims that usually explain a refusal: the trust policy matches on these."""
    try:
        recorded = oidc.decode_unverified(token).recorded()
    except NhiError:
        return ""
    shown = {k: recorded[k] for k in ("sub", "aud", "repository", "ref") if k in recorded}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class AwsBroker(CredentialBroker):
    """Issues one invocation's AWS session (and its entry session, when chained)."""

    def __init__(self, plan: AwsPlan, policy: RetryPolicy) -> None:
        self.plan = plan
        self.policy = policy
        self.retries = RetryOutcome()
        self.grants: list[Grant] = []
        self._entry: StsCredentials | None = None

    def issue(self, token: TokenSupplier, record: GrantRecorder) -> Grant:
        if self.plan.chained:
            # The signed hop needs botocore's signer (~150 ms to import): import it while the
            # first hop waits on the network.
            from nhi_invoke.brokers.aws.botocore_clients import preload  # noqa: PLC0415

            threading.Thread(target=preload, daemon=True).start()
        current = self._first_hop(token, record)
        if not self.plan.chained:
            return self.grants[-1]
        assert self._entry is not None
        target = self._grant(self._assume_role(self._entry, current), CHILD, self.plan.role_arn)
        record(target)
        return target

    def _first_hop(
        self, token: TokenSupplier, record: GrantRecorder, *, fresh: bool = False
    ) -> str:
        """Web identity into the entry role (or the target, single hop); returns the token."""
        first_role = self.plan.entry_role_arn or self.plan.role_arn
        duration = (
            self.plan.entry_duration_seconds if self.plan.chained else self.plan.duration_seconds
        )
        current = token(fresh)
        try:
            creds = self._web_identity(first_role, current, duration)
        except _FreshTokenNeeded:
            # A token can expire between fetch and use, or be rotated: ask for a new one once.
            log.debug("STS refused the token; fetching a fresh one and retrying once")
            current = token(True)
            try:
                creds = self._web_identity(first_role, current, duration)
            except _FreshTokenNeeded as again:
                raise self._refused(first_role, again.error, current) from again
        if self.plan.chained:
            self._entry = creds
        grant = self._grant(creds, ENTRY if self.plan.chained else CHILD, first_role)
        self.grants.append(grant)
        record(grant)
        return current

    def release(
        self, grant: Grant, ended_at: datetime, token: TokenSupplier, record: GrantRecorder
    ) -> Release:
        if not (self.plan.revokes and grant.purpose == CHILD and grant.principal_id):
            return expiring(grant, ended_at)
        if grant.expires_at <= _now():
            return expiring(grant, ended_at, reason="already expired; nothing to revoke")
        try:
            revocation = self.revoke_session(grant.principal_id, grant.expires_at, token, record)
        except NhiError as error:
            log.debug("could not revoke %s: %s", grant.session_name, error.one_line())
            return expiring(grant, ended_at, error=error)
        return Release(
            REVOCATION_DENY_POLICY,
            round(max(0.0, (_now() - ended_at).total_seconds()), 3),
            {
                "policy_name": revocation.policy_name,
                "role": role_name(self.plan.role_arn),
                "pruned": revocation.pruned,
            },
        )

    def endpoint(self, grant: CurrentGrant) -> Endpoint:
        from nhi_invoke.brokers.aws.endpoint import ContainerCredentials  # noqa: PLC0415

        return ContainerCredentials(grant)

    def private_configuration(
        self, folder: Callable[[], Path], environ: Mapping[str, str], served: bool
    ) -> dict[str, str]:
        # Both modes: environment variables beat the shared files in every SDK's chain, but a
        # served endpoint does not, and a command naming a profile reads them in either.
        from nhi_invoke.brokers.aws import shared_files  # noqa: PLC0415

        return shared_files.write(folder(), environ)

    def revoke_session(
        self,
        principal_id: str,
        expires_at: datetime,
        token: TokenSupplier,
        record: GrantRecorder,
    ) -> Revocation:
        """Deny one session of the target role, acting as the entry session.

        The entry session lives 900 s; a command that ran longer (or a recovery after a
        crash) needs a fresh OIDC token and a fresh entry hop first.
        """
        # Only a revoking run pays for these (botocore itself is imported by the client).
        from nhi_invoke.brokers.aws import botocore_clients  # noqa: PLC0415
        from nhi_invoke.brokers.aws.revoke import RevocationRefused, SessionRevoker  # noqa: PLC0415

        entry = self._entry
        if entry is None or (entry.expiration - _now()).total_seconds() < ENTRY_MARGIN_SECONDS:
            self._first_hop(token, record, fresh=True)
            entry = self._entry
        assert entry is not None
        iam = botocore_clients.client(
            "iam", region=self.plan.region, endpoint=self.plan.iam_endpoint, credentials=entry
        )
        revoker = SessionRevoker(iam, self.plan.role_arn, _now)

        def attempt() -> Revocation:
            try:
                return revoker.revoke(principal_id, expires_at)
            except RevocationRefused as refused:
                raise RefusedError(
                    f"IAM refused the deny policy on {self.plan.role_arn}: {refused}"[:400],
                    f"allow {self.plan.entry_role_arn} iam:PutRolePolicy, iam:DeleteRolePolicy "
                    "and iam:ListRolePolicies on the target role",
                ) from refused

        try:
            return self._with_retries(attempt, "revocation")
        finally:
            # Its connections now, not whenever the garbage collector finds the client: a
            # long-lived process (the Python API) revokes many sessions.
            iam.close()

    def _grant(self, creds: StsCredentials, purpose: str, role_arn: str) -> Grant:
        return Grant(
            broker=self.plan.broker,
            purpose=purpose,
            principal=creds.assumed_role_arn,
            principal_id=creds.assumed_role_id,
            session_name=self.plan.session_name,
            access_key_id=creds.access_key_id,
            expires_at=creds.expiration,
            fingerprint=creds.session_token.fingerprint,
            environment={
                "AWS_ACCESS_KEY_ID": Secret(creds.access_key_id),
                "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
                "AWS_SESSION_TOKEN": creds.session_token,
            },
            details={
                "role_arn": role_arn,
                "tags": self.plan.tags_for(purpose),
                "source_identity": self.plan.source_identity if purpose == CHILD else None,
                "packed_policy_size": creds.packed_policy_size,
            },
        )

    def _with_retries(self, attempt: Callable[[], T], what: str) -> T:
        return call_with_retries(
            attempt,
            self.policy,
            outcome=self.retries,
            on_give_up=lambda failure, tries: UnavailableError(
                f"{what} failed after {tries} tries: {failure.what}",
                f"check that {self.plan.sts_endpoint} is reachable, then re-run",
            ),
        )

    def _refused(
        self, role: str, error: StsError, token: str, *, chained_hop: bool = False
    ) -> NhiError:
        if error.code in CONFIG_CODES:
            return ConfigError(
                f"STS rejected the request for {role}: {error.code}: {error.message[:300]}",
                "fix the option STS names",
            )
        claims = _claims_hint(token)
        hint = (
            f"the target role's trust policy must allow {self.plan.entry_role_arn} "
            "sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity"
            if chained_hop
            else "check the role's trust policy: its Federated principal must be your CI's "
            "OIDC provider and its aud/sub conditions must match these claims"
        )
        return RefusedError(
            f"STS refused {role}: {error.code}: {error.message[:300]}"
            + (f" (token {claims})" if claims else ""),
            hint,
        )

    def _web_identity(self, role: str, token: str, duration: int) -> StsCredentials:
        def attempt() -> StsCredentials:
            try:
                return assume_role_with_web_identity(
                    self.plan.sts_endpoint,
                    role_arn=role,
                    session_name=self.plan.session_name,
                    web_identity_token=token,
                    duration_seconds=duration,
                    policy=None if self.plan.chained else self.plan.session_policy,
                    policy_arns=() if self.plan.chained else self.plan.policy_arns,
                )
            except StsError as error:
                if retryable(error.code, error.status):
                    raise Retryable(f"{error.code} from STS") from error
                if error.code in TOKEN_CODES:
                    raise _FreshTokenNeeded(error) from error
                raise self._refused(role, error, token) from error

        return self._with_retries(attempt, "AssumeRoleWithWebIdentity")

    def _assume_role(self, entry: StsCredentials, token: str) -> StsCredentials:
        fields = assume_role_fields(
            role_arn=self.plan.role_arn,
            session_name=self.plan.session_name,
            duration_seconds=self.plan.duration_seconds,
            tags=tuple((t.key, t.value) for t in self.plan.tags),
            transitive_tag_keys=self.plan.transitive_tag_keys if self.plan.tags else (),
            source_identity=self.plan.source_identity,
            policy=self.plan.session_policy,
            policy_arns=self.plan.policy_arns,
        )

        def attempt() -> StsCredentials:
            try:
                return assume_role(self.plan.sts_endpoint, self.plan.region, entry, fields)
            except StsError as error:
                if retryable(error.code, error.status):
                    raise Retryable(f"{error.code} from STS") from error
                raise self._refused(self.plan.role_arn, error, token, chained_hop=True) from error

        return self._with_retries(attempt, "AssumeRole")

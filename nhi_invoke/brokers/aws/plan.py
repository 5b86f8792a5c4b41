"""The AWS part of a plan: what will be asked of STS, hop by hop, and what the child gets."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nhi_invoke.brokers.aws.validation import AWS_MIN_DURATION
from nhi_invoke.brokers.grants import CHILD, Grant
from nhi_invoke.brokers.interface import BrokerPlan, ChildVariables
from nhi_invoke.figures import duration

if TYPE_CHECKING:
    from nhi_invoke.brokers.aws.tags import SessionTag

REVOCATION_EXPIRE = "expire"
REVOCATION_DENY_POLICY = "deny-policy"
_EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
# Shows the invocation in CloudTrail's userAgent for every call the command makes.
USER_AGENT_VARIABLE = "AWS_SDK_UA_APP_ID"
# Empty and private in both modes (shared_files.py): the runner's credentials never reach
# the command's SDKs.
SHARED_FILE_VARIABLES = ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")
CHILD_VARIABLES = ChildVariables(
    set=(
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION", *REGION_VARIABLES, USER_AGENT_VARIABLE,
        *SHARED_FILE_VARIABLES,
    ),
    served=(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        *REGION_VARIABLES, USER_AGENT_VARIABLE, *SHARED_FILE_VARIABLES,
    ),
    removed=(
        "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_SESSION_NAME", "AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
    ),
    removed_prefixes=("AWS_CONTAINER_CREDENTIALS_", "AWS_CONTAINER_AUTHORIZATION_TOKEN"),
)  # fmt: skip


def role_name(role_arn: str) -> str:
    """IAM's RoleName is the ARN's last segment: paths are not part of it."""
    return role_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class AwsPlan(BrokerPlan):
    """What will be asked of STS, hop by hop."""

    broker: ClassVar[str] = "aws"

    role_arn: str
    entry_role_arn: str | None
    region: str
    sts_endpoint: str
    audience: str
    session_name: str
    duration_seconds: int
    entry_duration_seconds: int
    tags: tuple[SessionTag, ...]
    transitive_tag_keys: tuple[str, ...]
    source_identity: str | None
    session_policy: str | None
    policy_arns: tuple[str, ...]
    iam_endpoint: str | None = None
    sts_endpoint_source: str = "the regional endpoint"  # what chose sts_endpoint
    revocation: str = REVOCATION_EXPIRE
    user_agent_app_id: str | None = None  # "nhi/<invocation id>", for the child's SDK

    @property
    def chained(self) -> bool:
        return self.entry_role_arn is not None

    @property
    def revokes(self) -> bool:
        return self.revocation == REVOCATION_DENY_POLICY

    def credential_lifetime(self) -> int:
        return self.duration_seconds

    def child_variables(self) -> ChildVariables:
        return CHILD_VARIABLES

    def child_environment(
        self, grants: Sequence[Grant], served: Mapping[str, str] | None
    ) -> dict[str, str]:
        env: dict[str, str] = {}
        if served is not None:
            env.update(served)
        else:
            for grant in grants:
                env.update(grant.child_environment())
                env["AWS_CREDENTIAL_EXPIRATION"] = grant.expires_at.strftime(_EXPIRATION_FORMAT)
        env.update(dict.fromkeys(REGION_VARIABLES, self.region))
        if self.user_agent_app_id is not None:
            env[USER_AGENT_VARIABLE] = self.user_agent_app_id
        return env

    def endings(self) -> tuple[tuple[str, str], ...]:
        endings: list[tuple[str, str]] = []
        if self.chained:
            endings.append(
                (
                    f"AWS entry session ({self.entry_role_arn})",
                    f"expires {duration(self.entry_duration_seconds)} after issue (used by "
                    "nhi-invoke only)",
                )
            )
        endings.append(
            (
                f"AWS command session ({self.role_arn})",
                "revoked as soon as the command ends (deny policy), else expires "
                f"{duration(self.duration_seconds)} after issue"
                if self.revokes
                else f"expires {duration(self.duration_seconds)} after issue (STS sessions "
                "cannot be revoked one by one without --aws-revoke)",
            )
        )
        return tuple(endings)

    def warnings(self) -> tuple[str, ...]:
        warnings = []
        if not self.chained:
            warnings.append(
                "single hop: the step is named in the session name only; add "
                "--aws-oidc-role-arn to carry session tags and SourceIdentity into CloudTrail"
            )
        if not self.revokes and self.duration_seconds > AWS_MIN_DURATION:
            warnings.append(
                f"the AWS session stays usable up to {duration(self.duration_seconds)} after "
                "it is issued, however soon the command ends: use the minimum "
                f"(--aws-duration {AWS_MIN_DURATION}) unless the command needs longer, or add "
                "--aws-revoke"
            )
        return tuple(warnings)

    def rows(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = [("AWS OIDC audience", self.audience)]
        if self.chained:
            rows.append(
                (
                    "AWS hop 1",
                    f"AssumeRoleWithWebIdentity -> {self.entry_role_arn} "
                    f"({duration(self.entry_duration_seconds)}, used by nhi-invoke only)",
                )
            )
            rows.append(
                ("AWS hop 2", f"AssumeRole -> {self.role_arn} ({duration(self.duration_seconds)})")
            )
        else:
            rows.append(
                (
                    "AWS hop",
                    f"AssumeRoleWithWebIdentity -> {self.role_arn} "
                    f"({duration(self.duration_seconds)})",
                )
            )
        rows += [
            ("AWS session name", self.session_name),
            ("AWS STS", f"{self.sts_endpoint} ({self.region}; {self.sts_endpoint_source})"),
        ]
        if self.tags:
            rows.append(("AWS session tags", ", ".join(f"{t.key}={t.value}" for t in self.tags)))
            rows.append(("AWS transitive", ", ".join(self.transitive_tag_keys)))
        if self.source_identity:
            rows.append(("AWS SourceIdentity", self.source_identity))
        if self.session_policy:
            rows.append(("AWS session policy", f"{len(self.session_policy)} characters"))
        if self.policy_arns:
            rows.append(("AWS policy ARNs", ", ".join(self.policy_arns)))
        rows.append(
            (
                "AWS revocation",
                f"deny policy nhi-revoked-<expiry>-<hash> on {role_name(self.role_arn)}, put by "
                "the entry session when the command ends, naming only this session"
                if self.revokes
                else f"none: the session expires {duration(self.duration_seconds)} after issue "
                "(add --aws-revoke to deny it when the command ends)",
            )
        )
        return rows

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tags"] = {t.key: t.value for t in self.tags}
        data["chained"] = self.chained
        data["sts_host"] = urllib.parse.urlsplit(self.sts_endpoint).hostname
        return data

    def started_fields(self) -> dict[str, Any]:
        return {
            "session_name": self.session_name,
            "role_arn": self.role_arn,
            "entry_role_arn": self.entry_role_arn,
            "region": self.region,
            "audience": self.audience,
            "revocation": self.revocation,
        }

    def tags_for(self, purpose: str) -> dict[str, str]:
        """The session tags a grant of this purpose carries (the chained hop's only)."""
        return {t.key: t.value for t in self.tags} if purpose == CHILD else {}

"""Settings + CI context -> the plan of one invocation. Pure; `--dry-run` renders it."""

from __future__ import annotations

from dataclasses import dataclass, field

from nhi_invoke import childenv
from nhi_invoke.ci.interface import CIContext
from nhi_invoke.config import DEFAULT_GCP_LIFETIME, AwsSettings, GcpSettings, Settings
from nhi_invoke.naming import TRANSITIVE_TAG_KEYS, SessionTag, session_name, session_tags
from nhi_invoke.validation import AWS_MIN_DURATION

REVOCATION_EXPIRE = "expire"
REVOCATION_DENY_POLICY = "deny-policy"
GCP_STANDARD_MAX_LIFETIME = 3_600


@dataclass(frozen=True)
class AwsPlan:
    """What will be asked of STS, hop by hop."""

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
    revocation: str = REVOCATION_EXPIRE

    @property
    def chained(self) -> bool:
        return self.entry_role_arn is not None

    @property
    def revokes(self) -> bool:
        return self.revocation == REVOCATION_DENY_POLICY


@dataclass(frozen=True)
class GcpPlan:
    """What will be asked of GCP STS and IAM Credentials."""

    provider: str
    audience: str
    service_account: str | None
    scopes: tuple[str, ...]
    lifetime_seconds: int
    project: str | None
    sts_endpoint: str
    iamcredentials_endpoint: str
    # GCP has no caller-chosen session name; this header is the attribution it allows.
    request_reason: str
    revocation: str = REVOCATION_EXPIRE

    @property
    def sts_audience(self) -> str:
        """The audience field of the STS token exchange: the provider's full resource name."""
        return f"//iam.googleapis.com/{self.provider}"

    @property
    def pool(self) -> str:
        return self.provider.rsplit("/providers/", 1)[0]


@dataclass(frozen=True)
class Plan:
    """Everything one invocation will do, decided before anything is done."""

    invocation_id: str
    step_id: str
    step_source: str
    ci: CIContext
    token_source: str
    aws: AwsPlan | None
    gcp: GcpPlan | None
    command: tuple[str, ...]
    ledger_path: str
    keep_oidc_env: bool
    env_set: tuple[str, ...]
    env_removed: tuple[str, ...]
    # Variables that can mint OIDC tokens; the child does not see them (--keep-oidc-env: none).
    stripped_variables: tuple[str, ...]
    kill_grace_seconds: float
    serve: bool = False
    refresh_margin_seconds: int = 300
    warnings: tuple[str, ...] = field(default=())

    @property
    def clouds(self) -> tuple[str, ...]:
        return tuple(name for name, part in (("aws", self.aws), ("gcp", self.gcp)) if part)

    @property
    def endings(self) -> tuple[tuple[str, str], ...]:
        """Each credential this invocation will issue, and how it will end."""
        endings: list[tuple[str, str]] = []
        if self.aws is not None:
            if self.aws.chained:
                endings.append(
                    (
                        f"AWS entry session ({self.aws.entry_role_arn})",
                        f"expires +{self.aws.entry_duration_seconds} s (used by nhi-invoke only)",
                    )
                )
            endings.append(
                (
                    f"AWS command session ({self.aws.role_arn})",
                    "revoked as soon as the command ends (deny policy), else expires "
                    f"+{self.aws.duration_seconds} s"
                    if self.aws.revokes
                    else f"expires +{self.aws.duration_seconds} s (STS sessions cannot be revoked "
                    "one by one without --aws-revoke)",
                )
            )
        if self.gcp is not None:
            federated = "expires with the OIDC token's lifetime (at most 1 h); cannot be revoked"
            if self.gcp.service_account is not None:
                endings.append(("GCP federated token (used by nhi-invoke only)", federated))
                endings.append(
                    (
                        f"GCP access token ({self.gcp.service_account})",
                        f"expires +{self.gcp.lifetime_seconds} s; cannot be revoked",
                    )
                )
            else:
                endings.append(("GCP federated token (the command's)", federated))
        return tuple(endings)


def _aws_plan(aws: AwsSettings, step_id: str, context: CIContext, invocation_id: str) -> AwsPlan:
    chained = aws.oidc_role_arn is not None
    return AwsPlan(
        role_arn=aws.role_arn,
        entry_role_arn=aws.oidc_role_arn,
        region=aws.region,
        sts_endpoint=aws.sts_endpoint,
        audience=aws.audience,
        session_name=session_name(step_id, context, invocation_id),
        duration_seconds=aws.duration,
        entry_duration_seconds=AWS_MIN_DURATION,
        tags=session_tags(step_id, context, invocation_id, aws.tags) if chained else (),
        transitive_tag_keys=TRANSITIVE_TAG_KEYS if chained else (),
        source_identity=invocation_id if chained and aws.source_identity else None,
        session_policy=aws.session_policy,
        policy_arns=aws.policy_arns,
        iam_endpoint=aws.iam_endpoint,
        revocation=REVOCATION_DENY_POLICY if aws.revoke else REVOCATION_EXPIRE,
    )


def _gcp_plan(gcp: GcpSettings, invocation_id: str) -> GcpPlan:
    return GcpPlan(
        provider=gcp.provider,
        audience=gcp.audience,
        service_account=gcp.service_account,
        scopes=gcp.scopes,
        lifetime_seconds=gcp.lifetime,
        project=gcp.project,
        sts_endpoint=gcp.sts_endpoint,
        iamcredentials_endpoint=gcp.iamcredentials_endpoint,
        request_reason=f"nhi-invoke invocation {invocation_id}",
    )


def _warnings(settings: Settings, context: CIContext, inherited: tuple[str, ...]) -> list[str]:
    warnings = list(settings.warnings)
    if settings.aws is not None and settings.aws.oidc_role_arn is None:
        warnings.append(
            "single hop: the step is named in the session name only; add "
            "--aws-oidc-role-arn to carry session tags and SourceIdentity into CloudTrail"
        )
    if settings.gcp is not None and settings.gcp.service_account is None:
        warnings.append(
            "no --gcp-service-account: the federated token itself is handed over; it lives as "
            "long as the OIDC token allows (up to 1 h) and its lifetime cannot be chosen"
        )
    aws = settings.aws
    if aws is not None and not aws.revoke and aws.duration > AWS_MIN_DURATION:
        warnings.append(
            f"the AWS session stays usable up to {aws.duration} s after it is issued, however "
            f"soon the command ends: use the {AWS_MIN_DURATION} s minimum unless the command "
            "needs longer, or add --aws-revoke"
        )
    if settings.gcp is not None and settings.gcp.lifetime > DEFAULT_GCP_LIFETIME:
        warnings.append(
            f"the GCP token stays usable for {settings.gcp.lifetime} s and cannot be revoked: "
            "keep --gcp-lifetime as short as the command needs"
        )
    if settings.gcp is not None and settings.gcp.lifetime > GCP_STANDARD_MAX_LIFETIME:
        warnings.append(
            f"--gcp-lifetime {settings.gcp.lifetime} needs the organization policy "
            "constraints/iam.allowServiceAccountCredentialLifetimeExtension"
        )
    lifetimes = [
        x
        for x in (aws.duration if aws else None, settings.gcp.lifetime if settings.gcp else None)
        if x
    ]
    expected = settings.expect_duration_seconds
    if expected is not None and not settings.serve and expected > min(lifetimes):
        warnings.append(
            f"the command is expected to run {expected} s, longer than its credentials live "
            f"({min(lifetimes)} s): add --serve so they are refreshed while it runs"
        )
    if context.provider == "local":
        warnings.append(
            "not running on a known CI: the token must come from --token-file/--token-env"
        )
    if childenv.ACTIVE_VARIABLE in inherited:
        warnings.append("nhi-invoke is already active in this environment (nested invocation)")
    if settings.keep_oidc_env:
        warnings.append(
            "--keep-oidc-env: the command can request OIDC tokens and mint identities of its own"
        )
    return warnings


def build(
    settings: Settings,
    context: CIContext,
    *,
    invocation_id: str,
    command: tuple[str, ...],
    token_source: str,
    inherited: tuple[str, ...],
    extra_token_variables: tuple[str, ...] = (),
) -> Plan:
    """Decide names, tags, hops and the child's environment for one invocation.

    `inherited` is the names of the parent's environment variables (names only: the plan
    never holds a value).
    """
    aws = (
        _aws_plan(settings.aws, settings.step_id, context, invocation_id) if settings.aws else None
    )
    gcp = _gcp_plan(settings.gcp, invocation_id) if settings.gcp else None
    clouds = tuple(name for name, part in (("aws", aws), ("gcp", gcp)) if part)
    token_variables = (
        () if settings.keep_oidc_env else (*context.token_variables, *extra_token_variables)
    )
    return Plan(
        invocation_id=invocation_id,
        step_id=settings.step_id,
        step_source=settings.step_source,
        ci=context,
        token_source=token_source,
        aws=aws,
        gcp=gcp,
        command=command,
        ledger_path=settings.ledger_path,
        keep_oidc_env=settings.keep_oidc_env,
        env_set=childenv.names_set(
            clouds, gcp_project=gcp is not None and gcp.project is not None, served=settings.serve
        ),
        env_removed=tuple(
            childenv.removed_names(dict.fromkeys(inherited, ""), clouds, token_variables)
        ),
        stripped_variables=token_variables,
        kill_grace_seconds=settings.kill_grace_seconds,
        serve=settings.serve,
        refresh_margin_seconds=settings.refresh_margin_seconds,
        warnings=tuple(_warnings(settings, context, inherited)),
    )

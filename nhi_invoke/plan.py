"""Settings + CI context -> the plan of one invocation. Pure; `--dry-run` renders it."""

from __future__ import annotations

from dataclasses import dataclass, field

from nhi_invoke import childenv
from nhi_invoke.ci.interface import CIContext
from nhi_invoke.config import AWS_MIN_DURATION, Settings
from nhi_invoke.naming import TRANSITIVE_TAG_KEYS, SessionTag, session_name, session_tags

REVOCATION_EXPIRE = "expire"


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
    revocation: str = REVOCATION_EXPIRE

    @property
    def chained(self) -> bool:
        return self.entry_role_arn is not None


@dataclass(frozen=True)
class Plan:
    """Everything one invocation will do, decided before anything is done."""

    invocation_id: str
    step_id: str
    step_source: str
    ci: CIContext
    token_source: str
    aws: AwsPlan
    command: tuple[str, ...]
    ledger_path: str
    keep_oidc_env: bool
    env_set: tuple[str, ...]
    env_removed: tuple[str, ...]
    # Variables that can mint OIDC tokens; the child does not see them (--keep-oidc-env: none).
    stripped_variables: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())


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
    name = session_name(settings.step_id, context, invocation_id)
    chained = settings.aws_oidc_role_arn is not None
    tags = session_tags(settings.step_id, context, invocation_id, settings.tags) if chained else ()
    assert settings.aws_role_arn is not None  # config.resolve guarantees it
    aws = AwsPlan(
        role_arn=settings.aws_role_arn,
        entry_role_arn=settings.aws_oidc_role_arn,
        region=settings.aws_region,
        sts_endpoint=settings.aws_sts_endpoint,
        audience=settings.aws_audience,
        session_name=name,
        duration_seconds=settings.aws_duration,
        entry_duration_seconds=AWS_MIN_DURATION,
        tags=tags,
        transitive_tag_keys=TRANSITIVE_TAG_KEYS if chained else (),
        source_identity=invocation_id if chained and settings.aws_source_identity else None,
        session_policy=settings.aws_session_policy,
        policy_arns=settings.aws_policy_arns,
    )
    warnings = list(settings.warnings)
    if not chained:
        warnings.append(
            "single hop: the step is named in the session name only; add "
            "--aws-oidc-role-arn to carry session tags and SourceIdentity into CloudTrail"
        )
    if context.provider == "local":
        warnings.append(
            "not running on a known CI: the token must come from --token-file/--token-env"
        )
    if childenv.ACTIVE_VARIABLE in inherited:
        warnings.append("nhi-invoke is already active in this environment (nested invocation)")
    token_variables = (
        () if settings.keep_oidc_env else (*context.token_variables, *extra_token_variables)
    )
    if settings.keep_oidc_env:
        warnings.append(
            "--keep-oidc-env: the command can request OIDC tokens and mint identities of its own"
        )
    env_removed = tuple(childenv.removed_names(dict.fromkeys(inherited, ""), token_variables))
    return Plan(
        invocation_id=invocation_id,
        step_id=settings.step_id,
        step_source=settings.step_source,
        ci=context,
        token_source=token_source,
        aws=aws,
        command=command,
        ledger_path=settings.ledger_path,
        keep_oidc_env=settings.keep_oidc_env,
        env_set=(*childenv.AWS_SET, *childenv.ALWAYS_SET),
        env_removed=env_removed,
        stripped_variables=token_variables,
        warnings=tuple(warnings),
    )

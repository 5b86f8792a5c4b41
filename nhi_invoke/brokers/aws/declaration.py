"""The AWS broker's declaration: its options, settings and plan. No SDK is imported here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nhi_invoke.brokers.aws import validation
from nhi_invoke.brokers.interface import BrokerDeclaration, PlanContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.naming import parse_tag
from nhi_invoke.settings.option import Kind, Option, OptionValues, Origin, Source, parse_list
from nhi_invoke.settings.validation import endpoint

if TYPE_CHECKING:
    from nhi_invoke.brokers.aws.plan import AwsPlan
    from nhi_invoke.brokers.aws.sts_endpoints import StsEndpoint
    from nhi_invoke.brokers.aws.tags import SessionTag
    from nhi_invoke.brokers.grants import Grant

NAME = "aws"
DEFAULT_REGION = "us-east-1"
DEFAULT_AUDIENCE = "sts.amazonaws.com"


@dataclass(frozen=True)
class AwsSettings:
    role_arn: str
    oidc_role_arn: str | None
    region: str
    duration: int
    session_policy: str | None  # compact JSON text
    policy_arns: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]
    source_identity: bool
    audience: str
    sts_endpoint: StsEndpoint
    iam_endpoint: str | None  # None: botocore's default for the partition
    revoke: bool


def iam_endpoint(environ: Mapping[str, str]) -> str | None:
    """botocore's endpoint override variables for IAM, else None (botocore's default)."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    for name in ("AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL"):
        if environ.get(name):
            return endpoint(name, environ[name])
    return None


def sts_endpoint(environ: Mapping[str, str], region: str) -> StsEndpoint:
    """The STS endpoint botocore would call for `region` in this environment."""
    from nhi_invoke.brokers.aws.sts_endpoints import resolve  # noqa: PLC0415

    return resolve(environ, region)


def _tags(raw: Any, source: Source) -> tuple[tuple[str, str], ...]:
    """`--tag KEY=VALUE` (repeatable), a table of strings in nhi-invoke.toml, or a mapping of
    strings from the Python API."""
    if source.origin is Origin.FLAG and isinstance(raw, Mapping):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
            raise ConfigError("tags must map strings to strings", 'pass tags={"team": "web"}')
        return tuple(raw.items())
    if source.origin is not Origin.CONFIG:
        return tuple(parse_tag(text) for text in parse_list(raw, source))
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        path = source.label.split(" in ", 1)[-1]
        raise ConfigError(
            f"{path}: tags must be a table of strings", 'write tags = { team = "web" }'
        )
    return tuple((str(k), v) for k, v in raw.items())


OPTIONS = (
    Option(
        name="aws_role_arn",
        help="The role the command's credentials belong to.",
        group=NAME,
        env=("NHI_AWS_ROLE_ARN",),
        metavar="ARN",
        validate=lambda value: validation.role_arn("--aws-role-arn", value),
    ),
    Option(
        name="aws_oidc_role_arn",
        help="Entry role trusted for the OIDC provider; chains into --aws-role-arn with "
        "session tags and SourceIdentity.",
        group=NAME,
        env=("NHI_AWS_OIDC_ROLE_ARN",),
        metavar="ARN",
        validate=lambda value: validation.role_arn("--aws-oidc-role-arn", value),
    ),
    Option(
        name="aws_region",
        help="Regional STS endpoint, and the command's region.",
        group=NAME,
        env=("NHI_AWS_REGION", "AWS_REGION"),
        default=DEFAULT_REGION,
        metavar="REGION",
        validate=validation.region,
    ),
    Option(
        name="aws_duration",
        help="Session seconds: 900-43200 (900-3600 when chained).",
        group=NAME,
        kind=Kind.NUMBER,
        env=("NHI_AWS_DURATION",),
        default=validation.AWS_MIN_DURATION,
        metavar="SECONDS",
    ),
    Option(
        name="aws_session_policy",
        help="JSON file: an inline session policy narrowing the role (at most 2048 characters "
        "compacted).",
        group=NAME,
        env=("NHI_AWS_SESSION_POLICY",),
        metavar="FILE",
        validate=validation.session_policy,
    ),
    Option(
        name="aws_policy_arns",
        help="A managed session policy (repeatable, at most 10).",
        group=NAME,
        kind=Kind.LIST,
        flags=("--aws-policy-arn",),
        metavar="ARN",
        validate=validation.policy_arns,
    ),
    Option(
        name="tags",
        help="An extra session tag (repeatable; chained only; not aws:, nhi: or ci:).",
        group=NAME,
        kind=Kind.LIST,
        flags=("--tag",),
        config_key="tags",
        metavar="KEY=VALUE",
        parse=_tags,
    ),
    Option(
        name="aws_source_identity",
        help="Set SourceIdentity to the invocation id on the chained hop.",
        group=NAME,
        kind=Kind.SWITCH,
        env=("NHI_AWS_SOURCE_IDENTITY",),
        default_text="on when chained",
    ),
    Option(
        name="aws_audience",
        help="Audience requested for (and checked in) the OIDC token for AWS.",
        group=NAME,
        env=("NHI_AWS_AUDIENCE",),
        default=DEFAULT_AUDIENCE,
        metavar="AUDIENCE",
    ),
    Option(
        name="aws_revoke",
        help="When the command ends, deny its session with an inline policy on the target "
        "role (chained only).",
        group=NAME,
        kind=Kind.SWITCH,
        env=("NHI_AWS_REVOKE",),
        default=False,
    ),
)


class AwsDeclaration(BrokerDeclaration[AwsSettings]):
    name = NAME
    title = "AWS"
    options = OPTIONS
    audience_option = "aws_audience"
    requires = "aws_role_arn"
    runtime = "nhi_invoke.brokers.aws.broker:AwsBroker"
    serves = True
    emulator = "nhi_invoke.sandbox.aws"
    step_outputs = ("aws-principal-arn",)

    def output_values(self, grant: Grant) -> Mapping[str, str]:
        """The assumed-role ARN the command acted as."""
        return {"aws-principal-arn": grant.principal}

    def settings(self, values: OptionValues, environ: Mapping[str, str]) -> AwsSettings | None:
        role = values.get("aws_role_arn")
        entry = values.get("aws_oidc_role_arn")
        tags: tuple[tuple[str, str], ...] = values.get("tags") or ()
        if role is None:
            return None  # not asked for (the core checks no other AWS option was given)
        chained = entry is not None
        source_identity = values.get("aws_source_identity")
        if not chained and (tags or source_identity):
            raise ConfigError(
                "session tags and SourceIdentity need a chained hop (AssumeRoleWithWebIdentity "
                "accepts neither)",
                "add --aws-oidc-role-arn with an entry role, or drop --tag/--aws-source-identity",
            )
        revoke = bool(values.get("aws_revoke"))
        if revoke and not chained:
            raise ConfigError(
                "--aws-revoke needs a chained hop: the deny policy is put by the entry session, "
                "and without one the command's own role would need IAM write access on itself",
                "add --aws-oidc-role-arn with an entry role allowed iam:PutRolePolicy on the "
                "target",
            )
        region = values.get("aws_region")
        return AwsSettings(
            role_arn=role,
            oidc_role_arn=entry,
            region=region,
            duration=validation.aws_duration(values.get("aws_duration"), chained=chained),
            session_policy=values.get("aws_session_policy"),
            policy_arns=values.get("aws_policy_arns") or (),
            tags=tags,
            source_identity=chained if source_identity is None else source_identity,
            audience=values.get("aws_audience") or DEFAULT_AUDIENCE,
            sts_endpoint=sts_endpoint(environ, region),
            iam_endpoint=iam_endpoint(environ),
            revoke=revoke,
        )

    def plan(self, settings: AwsSettings, context: PlanContext) -> AwsPlan:
        # The plan's code only for a run (or dry run) that uses this broker.
        from nhi_invoke.brokers.aws.plan import (  # noqa: PLC0415
            REVOCATION_DENY_POLICY,
            REVOCATION_EXPIRE,
            AwsPlan,
        )
        from nhi_invoke.naming import session_name  # noqa: PLC0415

        chained = settings.oidc_role_arn is not None
        invocation = context.invocation_id
        agent = context.task.agent if context.task is not None else None
        tags: tuple[SessionTag, ...] = ()
        transitive: tuple[str, ...] = ()
        if chained:  # only the chained hop carries tags
            from nhi_invoke.brokers.aws.tags import (  # noqa: PLC0415
                TRANSITIVE_TAG_KEYS,
                session_tags,
            )

            tags = session_tags(
                context.step_id, context.ci, invocation, settings.tags, task=context.task
            )
            transitive = TRANSITIVE_TAG_KEYS
        return AwsPlan(
            role_arn=settings.role_arn,
            entry_role_arn=settings.oidc_role_arn,
            region=settings.region,
            sts_endpoint=settings.sts_endpoint.url,
            sts_endpoint_source=settings.sts_endpoint.source,
            audience=settings.audience,
            session_name=session_name(context.step_id, context.ci, invocation, agent),
            duration_seconds=settings.duration,
            entry_duration_seconds=validation.AWS_MIN_DURATION,
            tags=tags,
            transitive_tag_keys=transitive,
            source_identity=invocation if chained and settings.source_identity else None,
            session_policy=settings.session_policy,
            policy_arns=settings.policy_arns,
            iam_endpoint=settings.iam_endpoint,
            revocation=REVOCATION_DENY_POLICY if settings.revoke else REVOCATION_EXPIRE,
            user_agent_app_id=f"nhi/{invocation}",
        )

    def recovery_plan(
        self, started: Mapping[str, Any], environ: Mapping[str, str]
    ) -> AwsPlan | None:
        """A chained invocation's command session can be denied after a crash (whether or not
        the run asked for --aws-revoke: `nhi-invoke revoke` is asked now); a single hop's
        only expires, since no session may deny another of its own role."""
        from nhi_invoke.brokers.aws.plan import REVOCATION_DENY_POLICY, AwsPlan  # noqa: PLC0415

        if not started.get("entry_role_arn"):
            return None
        region = started.get("region") or DEFAULT_REGION
        return AwsPlan(
            role_arn=started["role_arn"],
            entry_role_arn=started["entry_role_arn"],
            region=region,
            sts_endpoint=sts_endpoint(environ, region).url,
            audience=started.get("audience") or DEFAULT_AUDIENCE,
            session_name=started["session_name"],
            duration_seconds=validation.AWS_MIN_DURATION,
            entry_duration_seconds=validation.AWS_MIN_DURATION,
            tags=(),
            transitive_tag_keys=(),
            source_identity=None,
            session_policy=None,
            policy_arns=(),
            iam_endpoint=iam_endpoint(environ),
            revocation=REVOCATION_DENY_POLICY,
        )

    def principal_label(self, principal: str) -> str:
        # arn:aws:sts::123456789012:assumed-role/ROLE/SESSION -> assumed-role/ROLE/SESSION
        return principal.split(":", 5)[-1] if principal.startswith("arn:") else principal


DECLARATION = AwsDeclaration()

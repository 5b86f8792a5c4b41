"""Settings for one `run`: flags > NHI_* variables > nhi-invoke.toml > defaults, validated.

Every problem here is a configuration error (exit 78) that names the setting and its source.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nhi_invoke import validation
from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.naming import parse_tag

DEFAULT_REGION = "us-east-1"
DEFAULT_AWS_AUDIENCE = "sts.amazonaws.com"
DEFAULT_GCP_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
DEFAULT_GCP_LIFETIME = 600
GCP_STS_ENDPOINT = "https://sts.googleapis.com"
GCP_IAMCREDENTIALS_ENDPOINT = "https://iamcredentials.googleapis.com"
CONFIG_FILE_NAME = "nhi-invoke.toml"
DEFAULT_REFRESH_MARGIN = 300
DEFAULT_TIMEOUT = 60
DEFAULT_KILL_GRACE = 5


@dataclass(frozen=True)
class RunFlags:
    """What the user passed on the command line; None means 'not given'."""

    step_id: str | None = None
    aws_role_arn: str | None = None
    aws_oidc_role_arn: str | None = None
    aws_region: str | None = None
    aws_duration: int | None = None
    aws_session_policy: str | None = None
    aws_policy_arns: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    aws_source_identity: bool | None = None
    aws_audience: str | None = None
    aws_revoke: bool | None = None
    gcp_provider: str | None = None
    gcp_service_account: str | None = None
    gcp_scopes: tuple[str, ...] = ()
    gcp_lifetime: int | None = None
    gcp_project: str | None = None
    gcp_audience: str | None = None
    token_file: str | None = None
    token_env: str | None = None
    ledger: str | None = None
    config: str | None = None
    keep_oidc_env: bool | None = None
    serve: bool | None = None
    timeout: int | None = None
    refresh_margin: int | None = None
    expect_duration: int | None = None


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
    sts_endpoint: str
    iam_endpoint: str | None  # None: botocore's default for the partition
    revoke: bool


@dataclass(frozen=True)
class GcpSettings:
    provider: str
    service_account: str | None
    scopes: tuple[str, ...]
    lifetime: int
    project: str | None
    audience: str
    sts_endpoint: str
    iamcredentials_endpoint: str


@dataclass(frozen=True)
class Settings:
    """Validated settings for one invocation: at least one cloud."""

    step_id: str
    step_source: str
    aws: AwsSettings | None
    gcp: GcpSettings | None
    token_file: str | None
    token_env: str | None
    ledger_path: str
    keep_oidc_env: bool
    config_path: str | None
    kill_grace_seconds: float
    timeout_seconds: int
    serve: bool
    refresh_margin_seconds: int
    expect_duration_seconds: int | None
    warnings: tuple[str, ...] = field(default=())


# Option name -> environment variables, in order of precedence.
ENV_VARS: Mapping[str, tuple[str, ...]] = {
    "aws_role_arn": ("NHI_AWS_ROLE_ARN",),
    "aws_oidc_role_arn": ("NHI_AWS_OIDC_ROLE_ARN",),
    "aws_region": ("NHI_AWS_REGION", "AWS_REGION"),
    "aws_duration": ("NHI_AWS_DURATION",),
    "aws_session_policy": ("NHI_AWS_SESSION_POLICY",),
    "aws_source_identity": ("NHI_AWS_SOURCE_IDENTITY",),
    "aws_audience": ("NHI_AWS_AUDIENCE",),
    "aws_revoke": ("NHI_AWS_REVOKE",),
    "gcp_provider": ("NHI_GCP_PROVIDER",),
    "gcp_service_account": ("NHI_GCP_SERVICE_ACCOUNT",),
    "gcp_lifetime": ("NHI_GCP_LIFETIME",),
    "gcp_project": ("NHI_GCP_PROJECT",),
    "gcp_audience": ("NHI_GCP_AUDIENCE",),
    "token_file": ("NHI_TOKEN_FILE",),
    "token_env": ("NHI_TOKEN_ENV",),
    "ledger": ("NHI_LEDGER",),
    "keep_oidc_env": ("NHI_KEEP_OIDC_ENV",),
    "kill_grace": ("NHI_KILL_GRACE",),
    "serve": ("NHI_SERVE",),
    "timeout": ("NHI_TIMEOUT",),
    "refresh_margin": ("NHI_REFRESH_MARGIN",),
    "expect_duration": ("NHI_EXPECT_DURATION",),
}
# Keys allowed in [defaults] and [steps.<id>]: the flag names.
TOML_KEYS = frozenset(
    {
        "aws-role-arn", "aws-oidc-role-arn", "aws-region", "aws-duration", "aws-session-policy",
        "aws-policy-arn", "tags", "aws-source-identity", "aws-audience", "aws-revoke",
        "gcp-provider",
        "gcp-service-account", "gcp-scope", "gcp-lifetime", "gcp-project", "gcp-audience",
        "token-file", "token-env", "ledger", "keep-oidc-env", "kill-grace", "serve",
        "refresh-margin", "expect-duration", "timeout",
    }
)  # fmt: skip


def _parse_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    lowered = str(raw).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean", f"set {name} to true or false")


def _parse_int(name: str, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError as exc:
        raise ConfigError(
            f"{name}={raw!r} is not a whole number of seconds", f"set {name} to e.g. 900"
        ) from exc


def _load_toml(path: str, *, explicit: bool) -> dict[str, Any] | None:
    if not explicit and not os.path.exists(path):
        return None  # most steps have no config file: skip importing tomllib
    import tomllib  # noqa: PLC0415

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        if not explicit:
            return None
        raise ConfigError(
            f"the config file {path} does not exist", "pass --config the path of an nhi-invoke.toml"
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file {path}: {exc.strerror}", "check the file's permissions"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", "fix the syntax") from exc
    unknown_tables = set(data) - {"defaults", "steps"}
    if unknown_tables:
        raise ConfigError(
            f"{path}: unknown table [{sorted(unknown_tables)[0]}]",
            "use only [defaults] and [steps.<step-id>]",
        )
    return data


def _table(data: Any, where: str, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [{where}] is not a table", "see the README's config section")
    unknown = sorted(set(data) - TOML_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} in [{where}]",
            f"use one of: {', '.join(sorted(TOML_KEYS))}",
        )
    return data


def default_ledger_path(environ: Mapping[str, str]) -> str:
    """`$RUNNER_TEMP/nhi-invoke/ledger.jsonl` on GitHub, else the user's state directory."""
    runner_temp = environ.get("RUNNER_TEMP")
    if environ.get("GITHUB_ACTIONS") == "true" and runner_temp:
        return os.path.join(runner_temp, "nhi-invoke", "ledger.jsonl")
    state = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "nhi-invoke", "ledger.jsonl")


def iam_endpoint(environ: Mapping[str, str]) -> str | None:
    """botocore's endpoint override variables for IAM, else None (botocore's default)."""
    for name in ("AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL"):
        if environ.get(name):
            return validation.endpoint(name, environ[name])
    return None


def sts_endpoint(environ: Mapping[str, str], region: str) -> str:
    """botocore's own endpoint override variables, else the regional STS endpoint."""
    for name in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
        if environ.get(name):
            return validation.endpoint(name, environ[name])
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}"


@dataclass(frozen=True)
class _Sources:
    """The environment and the config file, consulted in that order after the flags."""

    environ: Mapping[str, str]
    file_values: Mapping[str, Any]
    config_path: str

    def pick(
        self, name: str, flag_value: Any, parse: Callable[[str, Any], Any] | None = None
    ) -> Any:
        """The first value given: flag, then NHI_* variable, then config file."""
        convert = parse or (lambda _where, value: value)
        if flag_value is not None:
            return convert(f"--{name.replace('_', '-')}", flag_value)
        for var in ENV_VARS.get(name, ()):
            if self.environ.get(var):
                return convert(var, self.environ[var])
        key = name.replace("_", "-")
        if key in self.file_values:
            return convert(f"{key} in {self.config_path}", self.file_values[key])
        return None

    def pick_int(self, name: str, flag_value: int | None, default: int) -> int:
        """A number: given (zero included, and validated later) or the default."""
        value = self.pick(name, flag_value, _parse_int)
        return default if value is None else int(value)

    def pick_list(self, key: str, flag_values: tuple[str, ...]) -> tuple[str, ...]:
        """Repeatable options: the flags replace the file's list."""
        if flag_values:
            return flag_values
        raw = self.file_values.get(key, ())
        if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
            raise ConfigError(
                f"{self.config_path}: {key} must be a list of strings", f'write {key} = ["…"]'
            )
        return tuple(raw)


def _step(
    flags: RunFlags, environ: Mapping[str, str], context: CIContext
) -> tuple[str, str, list[str]]:
    """The step id, where it came from, and warnings when it had to be guessed."""
    candidates = [
        ("flag --step-id", flags.step_id),
        ("NHI_STEP_ID", environ.get("NHI_STEP_ID") or None),
        (f"{context.provider} step", context.step),
    ]
    for source, value in candidates:
        if value is not None:
            return validation.step_id(value, source), source, []
    if context.job:
        source = f"{context.provider} job"
        warning = (
            f"the step has no id, so the job name {context.job!r} names it; give the step "
            "an 'id:' or pass --step-id so each step has its own name"
        )
        return validation.step_id(context.job, source), source, [warning]
    return "local", "default", ["no step id: pass --step-id so the session names its step"]


def _file_values(toml: Mapping[str, Any] | None, step_id: str, path: str) -> dict[str, Any]:
    """[defaults], overlaid with [steps.<step_id>]."""
    if toml is None:
        return {}
    values = dict(_table(toml.get("defaults", {}), "defaults", path))
    steps = toml.get("steps", {})
    if not isinstance(steps, dict):
        raise ConfigError(f"{path}: [steps] is not a table", "write [steps.<step-id>] tables")
    if step_id in steps:
        values.update(_table(steps[step_id], f"steps.{step_id}", path))
    return values


def _toml_tags(raw: Any, path: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(
            f"{path}: tags must be a table of strings", 'write tags = { team = "web" }'
        )
    return tuple((str(k), v) for k, v in raw.items())


def _aws(flags: RunFlags, sources: _Sources) -> AwsSettings | None:
    role = validation.role_arn("--aws-role-arn", sources.pick("aws_role_arn", flags.aws_role_arn))
    entry = validation.role_arn(
        "--aws-oidc-role-arn", sources.pick("aws_oidc_role_arn", flags.aws_oidc_role_arn)
    )
    tags = (
        tuple(parse_tag(t) for t in flags.tags)
        if flags.tags
        else _toml_tags(sources.file_values.get("tags"), sources.config_path)
    )
    if role is None:
        if entry is not None or tags:
            raise ConfigError(
                "AWS options are given but no --aws-role-arn",
                "pass --aws-role-arn with the role the command should act as",
            )
        return None
    chained = entry is not None
    source_identity = sources.pick("aws_source_identity", flags.aws_source_identity, _parse_bool)
    if not chained and (tags or source_identity):
        raise ConfigError(
            "session tags and SourceIdentity need a chained hop (AssumeRoleWithWebIdentity "
            "accepts neither)",
            "add --aws-oidc-role-arn with an entry role, or drop --tag/--aws-source-identity",
        )
    revoke = bool(sources.pick("aws_revoke", flags.aws_revoke, _parse_bool))
    if revoke and not chained:
        raise ConfigError(
            "--aws-revoke needs a chained hop: the deny policy is put by the entry session, and "
            "without one the command's own role would need IAM write access on itself",
            "add --aws-oidc-role-arn with an entry role allowed iam:PutRolePolicy on the target",
        )
    region = validation.region(sources.pick("aws_region", flags.aws_region) or DEFAULT_REGION)
    policy_path = sources.pick("aws_session_policy", flags.aws_session_policy)
    return AwsSettings(
        role_arn=role,
        oidc_role_arn=entry,
        region=region,
        duration=validation.aws_duration(
            sources.pick("aws_duration", flags.aws_duration, _parse_int), chained=chained
        ),
        session_policy=validation.session_policy(str(policy_path)) if policy_path else None,
        policy_arns=validation.policy_arns(
            sources.pick_list("aws-policy-arn", flags.aws_policy_arns)
        ),
        tags=tags,
        source_identity=chained if source_identity is None else source_identity,
        audience=str(sources.pick("aws_audience", flags.aws_audience) or DEFAULT_AWS_AUDIENCE),
        sts_endpoint=sts_endpoint(sources.environ, region),
        iam_endpoint=iam_endpoint(sources.environ),
        revoke=revoke,
    )


def _gcp(flags: RunFlags, sources: _Sources) -> GcpSettings | None:
    provider = sources.pick("gcp_provider", flags.gcp_provider)
    account = sources.pick("gcp_service_account", flags.gcp_service_account)
    if provider is None:
        if account is not None:
            raise ConfigError(
                "--gcp-service-account is given but no --gcp-provider",
                "pass --gcp-provider with your workload identity provider",
            )
        return None
    provider = validation.gcp_provider(str(provider))
    project = sources.pick("gcp_project", flags.gcp_project)
    environ = sources.environ
    return GcpSettings(
        provider=provider,
        service_account=validation.service_account(str(account)) if account else None,
        scopes=validation.gcp_scopes(
            sources.pick_list("gcp-scope", flags.gcp_scopes) or DEFAULT_GCP_SCOPES
        ),
        lifetime=validation.gcp_lifetime(
            sources.pick_int("gcp_lifetime", flags.gcp_lifetime, DEFAULT_GCP_LIFETIME)
        ),
        project=validation.gcp_project(str(project)) if project else None,
        audience=str(
            sources.pick("gcp_audience", flags.gcp_audience)
            or f"https://iam.googleapis.com/{provider}"
        ),
        sts_endpoint=validation.endpoint(
            "NHI_GCP_STS_ENDPOINT", environ.get("NHI_GCP_STS_ENDPOINT") or GCP_STS_ENDPOINT
        ),
        iamcredentials_endpoint=validation.endpoint(
            "NHI_GCP_IAMCREDENTIALS_ENDPOINT",
            environ.get("NHI_GCP_IAMCREDENTIALS_ENDPOINT") or GCP_IAMCREDENTIALS_ENDPOINT,
        ),
    )


def resolve(flags: RunFlags, environ: Mapping[str, str], context: CIContext, cwd: str) -> Settings:
    """Merge flags, NHI_* variables, nhi-invoke.toml and defaults, and validate the result."""
    given_path = flags.config or environ.get("NHI_CONFIG")
    config_path = given_path or os.path.join(cwd, CONFIG_FILE_NAME)
    toml = _load_toml(config_path, explicit=given_path is not None)
    # The step id comes first: it selects the [steps.<id>] table.
    step_id, step_source, warnings = _step(flags, environ, context)
    sources = _Sources(environ, _file_values(toml, step_id, config_path), config_path)
    aws = _aws(flags, sources)
    gcp = _gcp(flags, sources)
    if aws is None and gcp is None:
        raise ConfigError(
            "no cloud identity to issue: neither an AWS role nor a GCP provider is given",
            "pass --aws-role-arn and/or --gcp-provider (or set them in nhi-invoke.toml)",
        )
    serve = bool(sources.pick("serve", flags.serve, _parse_bool))
    margin = sources.pick_int("refresh_margin", flags.refresh_margin, DEFAULT_REFRESH_MARGIN)
    lifetimes = [x for x in (aws.duration if aws else None, gcp.lifetime if gcp else None) if x]
    if serve and not 0 <= margin < min(lifetimes):
        raise ConfigError(
            f"--refresh-margin {margin} is not shorter than the credentials' lifetime "
            f"({min(lifetimes)} s): every request would mint a new credential",
            "use a margin of a few minutes, shorter than --aws-duration / --gcp-lifetime",
        )
    expect_duration = sources.pick("expect_duration", flags.expect_duration, _parse_int)
    if expect_duration is not None and expect_duration <= 0:
        raise ConfigError(
            f"--expect-duration {expect_duration} is not positive",
            "give the command's expected run time in seconds",
        )
    token_file = sources.pick("token_file", flags.token_file)
    token_env = sources.pick("token_env", flags.token_env)
    if token_file is not None and token_env is not None:
        raise ConfigError(
            "both a token file and a token variable are given",
            "pass only one of --token-file and --token-env",
        )
    return Settings(
        step_id=step_id,
        step_source=step_source,
        aws=aws,
        gcp=gcp,
        token_file=str(token_file) if token_file else None,
        token_env=str(token_env) if token_env else None,
        ledger_path=str(sources.pick("ledger", flags.ledger) or default_ledger_path(environ)),
        keep_oidc_env=bool(sources.pick("keep_oidc_env", flags.keep_oidc_env, _parse_bool)),
        config_path=config_path if toml is not None else None,
        serve=serve,
        timeout_seconds=validation.timeout(
            sources.pick_int("timeout", flags.timeout, DEFAULT_TIMEOUT)
        ),
        refresh_margin_seconds=margin,
        expect_duration_seconds=expect_duration,
        kill_grace_seconds=validation.kill_grace(
            sources.pick_int("kill_grace", None, DEFAULT_KILL_GRACE)
        ),
        warnings=tuple(warnings),
    )

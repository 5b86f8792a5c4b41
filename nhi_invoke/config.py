"""Settings for one `run`: flags > NHI_* variables > nhi-invoke.toml > defaults, validated.

Every problem here is a configuration error (exit 78) that names the setting and its source.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.naming import parse_tag

DEFAULT_REGION = "us-east-1"
DEFAULT_AWS_AUDIENCE = "sts.amazonaws.com"
AWS_MIN_DURATION = 900
AWS_MAX_DURATION = 43_200
AWS_CHAINED_MAX_DURATION = 3_600  # STS caps role chaining at one hour
MAX_POLICY_ARNS = 10
SESSION_POLICY_MAX_CHARS = 2_048  # plaintext limit of inline + managed session policies
POLICY_FILE_MAX_BYTES = 64 * 1024
STEP_ID_MAX = 200
CONFIG_FILE_NAME = "nhi-invoke.toml"

ROLE_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.ASCII
)
POLICY_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::(\d{12}|aws):policy/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}", re.ASCII
)
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", re.ASCII)


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
    token_file: str | None = None
    token_env: str | None = None
    ledger: str | None = None
    config: str | None = None
    keep_oidc_env: bool | None = None


@dataclass(frozen=True)
class Settings:
    """Validated settings for one invocation."""

    step_id: str
    step_source: str
    aws_role_arn: str | None
    aws_oidc_role_arn: str | None
    aws_region: str
    aws_duration: int
    aws_session_policy: str | None  # compact JSON text
    aws_policy_arns: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]
    aws_source_identity: bool
    aws_audience: str
    aws_sts_endpoint: str
    token_file: str | None
    token_env: str | None
    ledger_path: str
    keep_oidc_env: bool
    config_path: str | None
    warnings: tuple[str, ...] = field(default=())


# name in flags/TOML -> environment variables, in order of precedence.
ENV_VARS: Mapping[str, tuple[str, ...]] = {
    "step_id": ("NHI_STEP_ID",),
    "aws_role_arn": ("NHI_AWS_ROLE_ARN",),
    "aws_oidc_role_arn": ("NHI_AWS_OIDC_ROLE_ARN",),
    "aws_region": ("NHI_AWS_REGION", "AWS_REGION"),
    "aws_duration": ("NHI_AWS_DURATION",),
    "aws_session_policy": ("NHI_AWS_SESSION_POLICY",),
    "aws_source_identity": ("NHI_AWS_SOURCE_IDENTITY",),
    "aws_audience": ("NHI_AWS_AUDIENCE",),
    "token_file": ("NHI_TOKEN_FILE",),
    "token_env": ("NHI_TOKEN_ENV",),
    "ledger": ("NHI_LEDGER",),
    "keep_oidc_env": ("NHI_KEEP_OIDC_ENV",),
}
# Keys allowed in [defaults] and [steps.<id>] (the flag names, kebab-case).
TOML_KEYS = {
    "aws-role-arn",
    "aws-oidc-role-arn",
    "aws-region",
    "aws-duration",
    "aws-session-policy",
    "aws-policy-arn",
    "tags",
    "aws-source-identity",
    "aws-audience",
    "token-file",
    "token-env",
    "ledger",
    "keep-oidc-env",
}


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
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
    import tomllib  # noqa: PLC0415 - most steps have no config file

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


def _table(data: Mapping[str, Any], where: str, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [{where}] is not a table", "see the README's config section")
    unknown = sorted(set(data) - TOML_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} in [{where}]",
            f"use one of: {', '.join(sorted(TOML_KEYS))}",
        )
    return data


def _validate_step_id(step_id: str, source: str) -> str:
    if not step_id.strip():
        raise ConfigError(f"the step id from {source} is empty", "pass --step-id NAME")
    if len(step_id) > STEP_ID_MAX:
        raise ConfigError(
            f"the step id from {source} is {len(step_id)} characters long",
            f"use a step id of at most {STEP_ID_MAX} characters",
        )
    if any(not ch.isprintable() for ch in step_id):
        raise ConfigError(
            f"the step id from {source} contains a control character",
            "use letters, digits and -_. in step ids",
        )
    return step_id


def _read_policy(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(POLICY_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the session policy {path}: {exc.strerror}",
            "pass --aws-session-policy a readable JSON file",
        ) from exc
    if len(raw) > POLICY_FILE_MAX_BYTES:
        raise ConfigError(
            f"the session policy {path} is larger than {POLICY_FILE_MAX_BYTES} bytes",
            f"session policies are at most {SESSION_POLICY_MAX_CHARS} characters",
        )
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(
            f"the session policy {path} is not JSON: {exc}", "write an IAM policy document"
        ) from exc
    if not isinstance(document, dict) or "Statement" not in document:
        raise ConfigError(
            f"the session policy {path} is not an IAM policy document",
            "it needs a Version and a Statement",
        )
    compact = json.dumps(document, separators=(",", ":"))
    if len(compact) > SESSION_POLICY_MAX_CHARS:
        raise ConfigError(
            f"the session policy {path} is {len(compact)} characters without whitespace, more "
            f"than the {SESSION_POLICY_MAX_CHARS} STS accepts",
            "narrow it, or use --aws-policy-arn with managed policies",
        )
    return compact


def default_ledger_path(environ: Mapping[str, str]) -> str:
    """`$RUNNER_TEMP/nhi-invoke/ledger.jsonl` on GitHub, else the user's state directory."""
    runner_temp = environ.get("RUNNER_TEMP")
    if environ.get("GITHUB_ACTIONS") == "true" and runner_temp:
        return os.path.join(runner_temp, "nhi-invoke", "ledger.jsonl")
    state = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "nhi-invoke", "ledger.jsonl")


def sts_endpoint(environ: Mapping[str, str], region: str) -> str:
    """botocore's own endpoint override variables, else the regional STS endpoint."""
    for name in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
        if environ.get(name):
            return environ[name].rstrip("/")
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
        parse = parse or (lambda _where, value: value)
        if flag_value is not None:
            return parse(f"--{name.replace('_', '-')}", flag_value)
        for var in ENV_VARS.get(name, ()):
            if self.environ.get(var):
                return parse(var, self.environ[var])
        key = name.replace("_", "-")
        if key in self.file_values:
            return parse(f"{key} in {self.config_path}", self.file_values[key])
        return None

    def pick_bool(self, name: str, flag_value: bool | None) -> bool | None:
        def parse(where: str, raw: Any) -> bool:
            return raw if isinstance(raw, bool) else _parse_bool(where, str(raw))

        return self.pick(name, flag_value, parse)  # type: ignore[no-any-return]


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
            return _validate_step_id(value, source), source, []
    if context.job:
        warning = (
            f"the step has no id, so the job name {context.job!r} names it; give the step "
            "an 'id:' or pass --step-id so each step has its own name"
        )
        return (
            _validate_step_id(context.job, f"{context.provider} job"),
            f"{context.provider} job",
            [warning],
        )
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


def _role_arn(label: str, value: Any) -> str | None:
    if value is None:
        return None
    if not ROLE_ARN.fullmatch(str(value)):
        raise ConfigError(
            f"{label} {str(value)[:120]!r} is not an IAM role ARN",
            "use arn:aws:iam::<12-digit account>:role/<name>",
        )
    return str(value)


def _duration(value: int | None, chained: bool) -> int:
    upper = AWS_CHAINED_MAX_DURATION if chained else AWS_MAX_DURATION
    duration = AWS_MIN_DURATION if value is None else value
    if not AWS_MIN_DURATION <= duration <= upper:
        why = " (role chaining caps sessions at one hour)" if chained else ""
        raise ConfigError(
            f"--aws-duration {duration} is outside {AWS_MIN_DURATION}-{upper} s{why}",
            f"pass a duration between {AWS_MIN_DURATION} and {upper} seconds",
        )
    return duration


def _policy_arns(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) > MAX_POLICY_ARNS:
        raise ConfigError(
            f"{len(values)} managed session policies, more than {MAX_POLICY_ARNS}",
            f"pass at most {MAX_POLICY_ARNS} --aws-policy-arn",
        )
    for arn in values:
        if not POLICY_ARN.fullmatch(str(arn)):
            raise ConfigError(
                f"--aws-policy-arn {str(arn)[:120]!r} is not an IAM policy ARN",
                "use arn:aws:iam::<account or aws>:policy/<name>",
            )
    return tuple(str(a) for a in values)


def resolve(flags: RunFlags, environ: Mapping[str, str], context: CIContext, cwd: str) -> Settings:
    """Merge flags, NHI_* variables, nhi-invoke.toml and defaults, and validate the result."""
    given_path = flags.config or environ.get("NHI_CONFIG")
    config_path = given_path or os.path.join(cwd, CONFIG_FILE_NAME)
    toml = _load_toml(config_path, explicit=given_path is not None)
    # The step id comes first: it selects the [steps.<id>] table.
    step_id, step_source, warnings = _step(flags, environ, context)
    sources = _Sources(environ, _file_values(toml, step_id, config_path), config_path)

    role = _role_arn("--aws-role-arn", sources.pick("aws_role_arn", flags.aws_role_arn))
    entry_role = _role_arn(
        "--aws-oidc-role-arn", sources.pick("aws_oidc_role_arn", flags.aws_oidc_role_arn)
    )
    if role is None:
        raise ConfigError(
            "no cloud identity to issue: no role given",
            "pass --aws-role-arn (or set NHI_AWS_ROLE_ARN, or aws-role-arn in nhi-invoke.toml)",
        )
    region = sources.pick("aws_region", flags.aws_region) or DEFAULT_REGION
    if not REGION.fullmatch(region):
        raise ConfigError(
            f"--aws-region {region[:40]!r} is not an AWS region name", "use e.g. us-east-1"
        )
    chained = entry_role is not None
    policy_path = sources.pick("aws_session_policy", flags.aws_session_policy)
    tags = (
        tuple(parse_tag(t) for t in flags.tags)
        if flags.tags
        else _toml_tags(sources.file_values.get("tags"), config_path)
    )
    source_identity = sources.pick_bool("aws_source_identity", flags.aws_source_identity)
    if not chained and (tags or source_identity):
        raise ConfigError(
            "session tags and SourceIdentity need a chained hop (AssumeRoleWithWebIdentity "
            "accepts neither)",
            "add --aws-oidc-role-arn with an entry role, or drop --tag/--aws-source-identity",
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
        aws_role_arn=role,
        aws_oidc_role_arn=entry_role,
        aws_region=region,
        aws_duration=_duration(
            sources.pick("aws_duration", flags.aws_duration, _parse_int), chained
        ),
        aws_session_policy=_read_policy(str(policy_path)) if policy_path is not None else None,
        aws_policy_arns=_policy_arns(
            flags.aws_policy_arns or tuple(sources.file_values.get("aws-policy-arn", ()))
        ),
        tags=tags,
        aws_source_identity=chained if source_identity is None else source_identity,
        aws_audience=str(sources.pick("aws_audience", flags.aws_audience) or DEFAULT_AWS_AUDIENCE),
        aws_sts_endpoint=sts_endpoint(environ, region),
        token_file=str(token_file) if token_file else None,
        token_env=str(token_env) if token_env else None,
        ledger_path=str(sources.pick("ledger", flags.ledger) or default_ledger_path(environ)),
        keep_oidc_env=bool(sources.pick_bool("keep_oidc_env", flags.keep_oidc_env)),
        config_path=config_path if toml is not None else None,
        warnings=tuple(warnings),
    )


def _toml_tags(raw: Any, path: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(
            f"{path}: tags must be a table of strings", 'write tags = { team = "web" }'
        )
    return tuple((str(k), v) for k, v in raw.items())

"""Settings for one invocation: flags > NHI_* variables > nhi-invoke.toml > defaults, validated.

Every problem here is a configuration error (exit 78) that names the setting and its source.
The core resolves its own options; each broker resolves its own (and says whether it was
asked for anything at all).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nhi_invoke import brokers, settings
from nhi_invoke.brokers.interface import BrokerDeclaration
from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError, UsageError
from nhi_invoke.ledger import default_path
from nhi_invoke.settings import validation
from nhi_invoke.settings.option import Option, OptionValues
from nhi_invoke.tasks.context import TaskContext

if TYPE_CHECKING:
    from nhi_invoke.net.environment import CaBundle

CONFIG_FILE_NAME = "nhi-invoke.toml"


@dataclass(frozen=True)
class BrokerChoice:
    """A broker the invocation uses, with its validated settings (of the broker's own type)."""

    declaration: BrokerDeclaration[Any]
    settings: Any


@dataclass(frozen=True)
class Settings:
    """Validated settings for one invocation: at least one broker."""

    step_id: str
    step_source: str
    brokers: tuple[BrokerChoice, ...]
    token_file: str | None
    token_env: str | None
    token_command: tuple[str, ...] | None
    ledger_path: str
    ledger_key_file: str | None
    keep_oidc_env: bool
    config_path: str | None
    kill_grace_seconds: float
    timeout_seconds: int
    serve: bool
    step_outputs: bool
    refresh_margin_seconds: int
    expect_duration_seconds: int | None
    ca_bundle: CaBundle | None = None
    warnings: tuple[str, ...] = field(default=())
    task: TaskContext | None = None  # an agent's task, when one is named


def _one_of(found: list[tuple[str, Any]]) -> tuple[str, Any] | None:
    """The one value given at one level of precedence; two different ones are an error."""
    given = [(source, value) for source, value in found if value not in (None, "")]
    if len({str(value) for _, value in given}) > 1:
        raise ConfigError(
            f"{given[0][0]} and {given[1][0]} both name the step (a task id is its synonym)",
            "pass only one of them",
        )
    return given[0] if given else None


def _step(
    given: Mapping[str, Any], environ: Mapping[str, str], context: CIContext
) -> tuple[str, str, list[str]]:
    """The step id (or the task id, its synonym), where it came from, and warnings when it
    had to be guessed."""
    levels = [
        [("flag --step-id", given.get("step_id")), ("flag --task-id", given.get("task_id"))],
        [("NHI_STEP_ID", environ.get("NHI_STEP_ID")), ("NHI_TASK_ID", environ.get("NHI_TASK_ID"))],
        [(f"{context.provider} step", context.step)],
    ]
    for level in levels:
        found = _one_of(level)
        if found is not None:
            source, value = found
            return validation.step_id(str(value), source), source, []
    if context.job:
        source = f"{context.provider} job"
        warning = (
            f"the step has no id, so the job name {context.job!r} names it; give the step "
            "an 'id:' or pass --step-id so each step has its own name"
        )
        return validation.step_id(context.job, source), source, [warning]
    return "local", "default", ["no step id: pass --step-id so the session names its step"]


def _stray(declaration: BrokerDeclaration[Any], values: OptionValues) -> None:
    """A broker whose first option was not given is not used: its other options from
    [defaults] are ignored (defaults serve every step), but given for this step (a flag, an
    NHI_* variable, the step's table) they are a mistake worth stopping for."""
    primary = values.options[declaration.requires].flag
    for option in declaration.options:
        source = None if option.name == declaration.requires else values.explicit(option.name)
        if source is not None:
            raise ConfigError(
                f"{option.flag} is given (by {source.label}) but {primary} is not, so no "
                f"{declaration.title} credential would be issued",
                f"pass {primary} for this step, or drop {source.label} (options for every "
                "step belong in nhi-invoke.toml's [defaults], which a step without "
                f"{primary} ignores)",
            )


def _brokers(values: OptionValues, environ: Mapping[str, str]) -> tuple[BrokerChoice, ...]:
    declared = brokers.declarations(environ)
    chosen = []
    for declaration in declared:
        if not values.is_given(declaration.requires):
            _stray(declaration, values)
            continue
        broker_settings = declaration.settings(values, environ)
        if broker_settings is not None:
            chosen.append(BrokerChoice(declaration, broker_settings))
    if not chosen:
        flags = ", ".join(values.options[d.requires].flag for d in declared)
        raise ConfigError(
            f"no cloud identity to issue: none of {flags} is given",
            "pass at least one of them (or set it in nhi-invoke.toml)",
        )
    return tuple(chosen)


def _check_given(given: Mapping[str, Any], options: Mapping[str, Option]) -> None:
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r}", "see 'nhi-invoke run --help'")


def resolve(
    given: Mapping[str, Any], environ: Mapping[str, str], context: CIContext, cwd: str
) -> Settings:
    """Merge what was given, NHI_* variables, nhi-invoke.toml and defaults; validate.

    `given` holds the values passed as flags (or keyword arguments), by option name.
    """
    options = settings.by_name(environ)
    _check_given(given, options)
    explicit = given.get("config") or environ.get("NHI_CONFIG")
    config_path = str(explicit or os.path.join(cwd, CONFIG_FILE_NAME))
    # The step id comes first: it selects the [steps.<id>] table.
    step_id, step_source, warnings = _step(given, environ, context)
    data: dict[str, Any] | None = None
    file_values: dict[str, Any] = {}
    step_keys: frozenset[str] = frozenset()
    if explicit or os.path.exists(config_path):
        # Most steps have no config file: its reader (and tomllib) only when there is one.
        from nhi_invoke.settings import config_file  # noqa: PLC0415

        data = config_file.load(config_path, explicit=bool(explicit))
        file_values = config_file.values(data, step_id, config_path, options)
        step_keys = config_file.step_keys(data, step_id)
    values = OptionValues(options, given, environ, file_values, config_path, step_keys)
    chosen = _brokers(values, environ)
    serve = bool(values.get("serve"))
    if serve:
        for choice in chosen:
            if not choice.declaration.serves:
                title = choice.declaration.title
                raise ConfigError(
                    f"--serve: the {title} broker cannot serve its credentials (it has no "
                    "endpoint protocol)",
                    f"drop --serve, or issue the {title} credentials in a step of its own",
                )
    expect_duration = values.get("expect_duration")
    if expect_duration is not None and expect_duration <= 0:
        raise ConfigError(
            f"--expect-duration {expect_duration} is not positive",
            "give the command's expected run time in seconds",
        )
    token_file = values.get("token_file") or None
    token_env = values.get("token_env") or None
    token_command = values.get("token_command") or None
    if sum(source is not None for source in (token_file, token_env, token_command)) > 1:
        raise ConfigError(
            "more than one token source is given",
            "pass only one of --token-file, --token-env and --token-command",
        )
    return Settings(
        step_id=step_id,
        step_source=step_source,
        brokers=chosen,
        token_file=token_file,
        token_env=token_env,
        token_command=token_command,
        ledger_path=values.get("ledger") or default_path(environ),
        ledger_key_file=values.get("ledger_key_file") or None,
        keep_oidc_env=bool(values.get("keep_oidc_env")),
        config_path=config_path if data is not None else None,
        serve=serve,
        step_outputs=bool(values.get("step_outputs")),
        timeout_seconds=values.get("timeout"),
        refresh_margin_seconds=values.get("refresh_margin"),
        expect_duration_seconds=expect_duration,
        kill_grace_seconds=values.get("kill_grace"),
        ca_bundle=values.get("ca_bundle"),
        warnings=tuple(warnings),
        task=_task(step_id, step_source, values),
    )


def _task(step_id: str, step_source: str, values: OptionValues) -> TaskContext | None:
    """The task context: the task id when the step was named as a task, the agent, the user."""
    task = TaskContext(
        task_id=step_id if step_source in ("flag --task-id", "NHI_TASK_ID") else None,
        agent=values.get("agent"),
        on_behalf_of=values.get("on_behalf_of"),
    )
    return task if task != TaskContext() else None

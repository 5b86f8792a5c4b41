"""nhi-invoke.toml: `[defaults]`, overlaid by `[steps.<step-id>]`, keyed by option names.

Unknown tables or keys are configuration errors (exit 78), so that a typo never silently
widens a step; so are options declared as not allowed in a repository's file: those that
widen what a step can reach (the OIDC request variables kept for the command, where tokens
come from, the ledger and its key) may be chosen by the pipeline alone (docs/threat-model.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nhi_invoke.errors import ConfigError
from nhi_invoke.settings.option import Option


def load(path: str, *, explicit: bool) -> dict[str, Any] | None:
    """The file's tables, or None when there is no file (and none was asked for)."""
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


def _table(data: Any, where: str, path: str, options: Mapping[str, Option]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [{where}] is not a table", "see the README's config section")
    by_key = {option.key: option for option in options.values()}
    allowed = sorted(key for key, option in by_key.items() if option.from_config)
    for key in sorted(data):
        option = by_key.get(key)
        if option is None:
            raise ConfigError(
                f"{path}: unknown key {key!r} in [{where}]", f"use one of: {', '.join(allowed)}"
            )
        if not option.from_config:
            ways = ([option.flag] if option.cli else []) + list(option.env[:1])
            raise ConfigError(
                f"{path}: {key} may not be set in the config file ([{where}]): a repository "
                "may not choose it",
                f"set it in the pipeline instead ({' or '.join(ways)})",
            )
    return data


def step_keys(data: Mapping[str, Any] | None, step_id: str) -> frozenset[str]:
    """The keys the step's own table sets (checked by `values`)."""
    steps = (data or {}).get("steps", {})
    table = steps.get(step_id, {}) if isinstance(steps, dict) else {}
    return frozenset(table) if isinstance(table, dict) else frozenset()


def values(
    data: Mapping[str, Any] | None, step_id: str, path: str, options: Mapping[str, Option]
) -> dict[str, Any]:
    """[defaults], overlaid with [steps.<step_id>]."""
    if data is None:
        return {}
    found = dict(_table(data.get("defaults", {}), "defaults", path, options))
    steps = data.get("steps", {})
    if not isinstance(steps, dict):
        raise ConfigError(f"{path}: [steps] is not a table", "write [steps.<step-id>] tables")
    if step_id in steps:
        found.update(_table(steps[step_id], f"steps.{step_id}", path, options))
    return found

"""Settings: one registry of options (the core's and every broker's), their sources and
their resolution into validated settings for one invocation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nhi_invoke import brokers
from nhi_invoke.settings import core
from nhi_invoke.settings.option import Option, OptionValues


def options(environ: Mapping[str, str]) -> tuple[Option, ...]:
    """Every option of `run`, in the order `--help` shows them: the step, each broker's, the
    invocation's."""
    declared = [o for d in brokers.declarations(environ) for o in d.options]
    return (core.STEP_ID, *declared, *core.OPTIONS)


def by_name(environ: Mapping[str, str]) -> dict[str, Option]:
    return {option.name: option for option in options(environ)}


def outside_run(name: str, given: Any, environ: Mapping[str, str]) -> Any:
    """An option's value for a command other than `run` (no config file): the flag, else its
    variables, else its default."""
    return OptionValues(by_name(environ), {name: given}, environ, {}, "").get(name)

"""What one `nhi-invoke run` was asked to do, as a frozen value: built in one place from the
parameters of either parser (typer's command in `cli/run.py`, or the lean parser in
`cli/run_parser.py`), then handed to `cli/run_execute.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

# `run`'s own options (not settings: they choose what is printed, not what is issued).
OUTPUT_OPTIONS = ("dry_run", "json", "quiet", "debug")


class RunArguments(NamedTuple):
    """The command after '--', the settings given as flags (by option name), and the output
    options. A typed named tuple, not a frozen dataclass: a quarter of the cost to define, on
    every run (as the ledger's records)."""

    command: tuple[str, ...] | None
    given: Mapping[str, Any]
    dry_run: bool = False
    json: bool = False
    quiet: bool = False
    debug: bool = False


def _value(value: Any) -> Any:
    # click hands a repeatable option as a tuple (empty when absent), typer as a list (None
    # when absent): one form for both, so that both parsers build the same request.
    if isinstance(value, list | tuple):
        return tuple(value) or None
    return value


def from_parameters(parameters: Mapping[str, Any]) -> RunArguments:
    """The arguments from a parser's parameters: `command`, every registry option by name, and
    the output options."""
    return RunArguments(
        command=_value(parameters.get("command")),
        given={
            name: _value(value)
            for name, value in parameters.items()
            if name != "command" and name not in OUTPUT_OPTIONS
        },
        dry_run=bool(parameters.get("dry_run")),
        json=bool(parameters.get("json")),
        quiet=bool(parameters.get("quiet")),
        debug=bool(parameters.get("debug")),
    )

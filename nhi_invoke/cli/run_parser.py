"""`run`'s own parser: the forms of its command line people write, without the CLI framework.

Importing typer and its click and building the command from the registry cost every `run`
about 40 ms on a quiet 2-core machine (over 100 ms under load; BENCHMARKS.md), as much as
the rest of a dry run. So `run`'s
common command lines are parsed here, from the same option registry typer's command is built
from (`cli/run.py`), into exactly the parameters click would hand typer (held equal by
`tests/unit/test_run_parser.py`): `--opt value`, `--opt=value`, `--switch` and `--no-switch`,
a repeatable option repeated, `-q`, and the command after `--` (or from the first argument
that is not an option, as click reads it). Anything else (an unknown option, an abbreviation,
a missing value, a short option cluster, `-h`) is not parsed here: `parameters` returns None,
and typer parses the line and prints today's help or error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nhi_invoke.settings.option import Kind, Option

# `run`'s output options (`cli/options.py`, `cli/run.py`): flags without a `--no-` form.
OUTPUT_FLAGS = {
    "--dry-run": "dry_run",
    "--json": "json",
    "--quiet": "quiet",
    "-q": "quiet",
    "--debug": "debug",
}
_SWITCH = 0  # the flag sets its option to a boolean
_VALUE = 1  # the flag takes a value
_REPEATED = 2  # the flag takes a value, and may be repeated


def _table(options: Sequence[Option]) -> dict[str, tuple[str, int, bool]]:
    """Every flag: the option it sets, how, and (for a switch) to what."""
    table: dict[str, tuple[str, int, bool]] = {}
    for option in options:
        if not option.cli:
            continue
        if option.kind is Kind.SWITCH:
            table[option.flag] = (option.name, _SWITCH, True)
            table[f"--no-{option.flag[2:]}"] = (option.name, _SWITCH, False)
        elif option.kind is Kind.LIST:
            table[option.flag] = (option.name, _REPEATED, False)
        else:
            table[option.flag] = (option.name, _VALUE, False)
    for flag, name in OUTPUT_FLAGS.items():
        table[flag] = (name, _SWITCH, True)
    return table


def defaults(options: Sequence[Option]) -> dict[str, Any]:
    """The parameters of a `run` given nothing, as click hands them: no command, every option
    unset (a repeatable one as an empty tuple), every output flag off."""
    parameters: dict[str, Any] = {"command": ()}
    for option in options:
        if option.cli:
            parameters[option.name] = () if option.kind is Kind.LIST else None
    parameters.update(dict.fromkeys(OUTPUT_FLAGS.values(), False))
    return parameters


def parameters(args: Sequence[str], options: Sequence[Option]) -> dict[str, Any] | None:
    """The parameters of `run ARGS` (ARGS after the word `run`), or None when the line is not
    one this parser reads with certainty (typer then reads it)."""
    table = _table(options)
    found = defaults(options)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break  # click: the first argument that is not an option starts the command
        flag, equals, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        entry = table.get(flag)
        if entry is None:
            return None  # unknown, abbreviated, `-h`, `--help`, a cluster such as `-qh`
        name, how, switched = entry
        if how == _SWITCH:
            if equals:
                return None  # click: "option does not take a value"
            found[name] = switched
            index += 1
            continue
        if not equals:
            if index + 1 >= len(args):
                return None  # click: "option requires an argument"
            # As click does, the next argument is the value, even if it starts with '-'.
            value = args[index + 1]
            index += 1
        index += 1
        found[name] = (*found[name], value) if how == _REPEATED else value
    found["command"] = tuple(args[index:])
    return found


def lean_parameters(args: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any] | None:
    """`parameters` with the registry's options for this environment."""
    from nhi_invoke import settings  # noqa: PLC0415

    return parameters(args, settings.options(environ))

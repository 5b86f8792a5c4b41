"""One declaration per option, and the values a user gave for them.

An `Option` is written once, next to what it configures (the invocation's in the package's
`__init__.py`, each broker's in its declaration module), and serves every way a value can
arrive: the `run` flag, the `NHI_*` variable (and fallbacks such as an SDK's own region
variable), the `nhi-invoke.toml` key, and the Python API's keyword argument (the option's
`name`). Precedence: flag or keyword > variables in order > config file > default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from nhi_invoke.errors import ConfigError


class Kind(Enum):
    TEXT = "text"
    NUMBER = "number"  # a whole number (seconds, mostly)
    SWITCH = "switch"  # --x/--no-x, or true/false
    LIST = "list"  # a repeatable flag; a list of strings in the config file


class Origin(Enum):
    FLAG = "flag"  # the command line, or the Python API's keyword argument
    ENV = "env"
    CONFIG = "config"


class Source(NamedTuple):
    """Where a value came from: the origin, and a label that names it in error messages."""

    origin: Origin
    label: str


@dataclass(frozen=True)
class Option:
    """How one setting is named, typed, found, defaulted, described and checked."""

    name: str  # the Python name, also the API keyword: "<broker>_role_arn"
    help: str
    group: str  # the broker it belongs to, or "invocation"
    kind: Kind = Kind.TEXT
    flags: tuple[str, ...] = ()  # default: --<name with dashes>; none for variable-only options
    cli: bool = True  # False: no flag (variables and the config file only)
    env: tuple[str, ...] = ()  # in order of precedence
    config_key: str | None = None  # default: the flag's name; see `from_config`
    from_config: bool = True  # False: refused in nhi-invoke.toml (a repository's file)
    default: Any = None
    default_text: str | None = None  # a computed default, described ("from the CI")
    metavar: str | None = None
    # Converts a raw value (a flag's, a variable's text, a TOML value) into the option's type.
    parse: Callable[[Any, Source], Any] | None = None
    # Checks a parsed value; returns it (possibly normalised) or raises ConfigError.
    validate: Callable[[Any], Any] | None = None

    @property
    def flag(self) -> str:
        return self.flags[0] if self.flags else "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """The key in nhi-invoke.toml."""
        return self.config_key or self.flag.removeprefix("--")

    @property
    def shown_default(self) -> str | None:
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default == ():
            return None
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, tuple):
            return ", ".join(str(v) for v in self.default)
        return str(self.default)

    def sources_text(self) -> str:
        """`env: …; config: …; default: …` for help texts."""
        parts = []
        if self.env:
            parts.append("env: " + ", ".join(self.env))
        parts.append(f"config: {self.key}" if self.from_config else "config: not allowed")
        if self.shown_default is not None:
            parts.append(f"default: {self.shown_default}")
        return "; ".join(parts)

    def convert(self, raw: Any, source: Source) -> Any:
        """The raw value in the option's type."""
        if self.parse is not None:
            return self.parse(raw, source)
        return CONVERTERS[self.kind](raw, source)


def given_as(source: Source, raw: Any) -> str:
    """How the user wrote the value: `--x 'v'`, `NHI_X='v'`, `x = 'v' in nhi-invoke.toml`."""
    if source.origin is Origin.FLAG:
        return f"{source.label} {raw!r}"
    if source.origin is Origin.CONFIG:
        key, _, path = source.label.partition(" in ")
        return f"{key} = {raw!r} in {path}"
    return f"{source.label}={raw!r}"


def parse_bool(raw: Any, source: Source) -> bool:
    if isinstance(raw, bool):
        return raw
    lowered = str(raw).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{given_as(source, raw)} is not a boolean", "use true or false")


def parse_number(raw: Any, source: Source) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError as exc:
        raise ConfigError(
            f"{given_as(source, raw)} is not a whole number of seconds",
            "give the number of seconds, e.g. 900 for 15 minutes",
        ) from exc


def parse_text(raw: Any, source: Source) -> str:
    return str(raw)


def parse_list(raw: Any, source: Source) -> tuple[str, ...]:
    if source.origin is Origin.ENV:
        # One variable holds the list: comma- or newline-separated.
        return tuple(p.strip() for p in re.split(r"[,\n]", str(raw)) if p.strip())
    if source.origin is Origin.CONFIG and (
        not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw)
    ):
        key = source.label.split(" in ", 1)[0]
        raise ConfigError(f"{source.label} must be a list of strings", f'write {key} = ["…"]')
    return tuple(str(v) for v in raw)


CONVERTERS: Mapping[Kind, Callable[[Any, Source], Any]] = {
    Kind.TEXT: parse_text,
    Kind.NUMBER: parse_number,
    Kind.SWITCH: parse_bool,
    Kind.LIST: parse_list,
}


def _given(value: Any) -> bool:
    """Whether a flag or keyword gave a value (CI systems export empty strings for unset)."""
    return value is not None and value not in ((), [], "")


class OptionValues:
    """The values one invocation was given, found and checked on demand.

    Values are looked up, converted and validated when a resolver asks for them, so that an
    option of a broker the invocation does not use is never checked.
    """

    def __init__(
        self,
        options: Mapping[str, Option],
        given: Mapping[str, Any],
        environ: Mapping[str, str],
        file_values: Mapping[str, Any],
        config_path: str,
        step_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.options = options
        self.given = given  # flags or keyword arguments, by option name
        self.environ = environ
        self.file_values = file_values  # nhi-invoke.toml, by config key
        self.config_path = config_path
        self.step_keys = step_keys  # the keys of file_values that [steps.<id>] set

    def found(self, name: str) -> tuple[Any, Source] | None:
        """The first raw value given for `name`, and where it came from."""
        option = self.options[name]
        value = self.given.get(name)
        if _given(value):
            return value, Source(Origin.FLAG, option.flag)
        for variable in option.env:
            if self.environ.get(variable):
                return self.environ[variable], Source(Origin.ENV, variable)
        if option.from_config and option.key in self.file_values:
            raw = self.file_values[option.key]
            if option.kind is not Kind.LIST or _given(raw):
                return raw, Source(Origin.CONFIG, f"{option.key} in {self.config_path}")
        return None

    def is_given(self, name: str) -> bool:
        return self.found(name) is not None

    def explicit(self, name: str) -> Source | None:
        """Where a value was given for this step on purpose: a flag, one of our own NHI_*
        variables, or the step's table in nhi-invoke.toml. None when nothing gave one, or only
        [defaults] did (defaults serve every step, whichever brokers it uses), or only another
        tool's variable did (such as a cloud SDK's own region variable), or only the variable of
        a variable-only setting did (a CA bundle, an authority host: the runner's environment,
        set for every step like [defaults])."""
        found = self.found(name)
        if found is None:
            return None
        source = found[1]
        if source.origin is Origin.CONFIG and self.options[name].key not in self.step_keys:
            return None
        if source.origin is Origin.ENV and (
            not source.label.startswith("NHI_") or not self.options[name].cli
        ):
            return None
        return source

    def get(self, name: str) -> Any:
        """The value, converted and validated; the default when nothing gave one."""
        option = self.options[name]
        found = self.found(name)
        if found is None:
            return option.default
        value = option.convert(*found)
        return option.validate(value) if option.validate is not None else value

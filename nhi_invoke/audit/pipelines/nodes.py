"""Reading YAML values into the model: settings, scripts and places, with their lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nhi_invoke.audit.pipelines.model import Reach, Script, ScriptLine, Setting, Where
from nhi_invoke.audit.pipelines.yaml_tree import Map, Seq, Span, text_of


class Sources:
    """The text of every file read, by shown name: scripts are matched line by line."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}

    def add(self, file: str, text: str) -> None:
        self.lines[file] = text.splitlines()

    def between(self, span: Span) -> list[tuple[int, str]]:
        lines = self.lines.get(span.file, [])
        return [(n, lines[n - 1]) for n in range(span.line, min(span.end, len(lines)) + 1)]


def where(span: Span) -> Where:
    return Where(span.file, span.key_line)


def value_where(span: Span) -> Where:
    return Where(span.file, span.line)


def mapping(value: Any) -> Map | None:
    return value if isinstance(value, Map) else None


def sequence(value: Any) -> Seq | None:
    return value if isinstance(value, Seq) else None


def text(value: Any) -> str:
    return text_of(value)


def settings(
    block: Any, reach: Reach, input_of: str = "", local_input: bool = False
) -> tuple[Setting, ...]:
    """The NAME: value entries of an env/variables/with block."""
    if not isinstance(block, Map):
        return ()
    group = Where(block.span.file, block.span.line)
    found = []
    for name, raw in block.items():
        value = raw.get("value") if isinstance(raw, Map) else raw  # GitLab: {value:, description:}
        if isinstance(value, Map | Seq):
            continue
        found.append(
            Setting(
                name=name,
                value="" if value is None else str(value),
                where=where(block.span_of(name)),
                reach=reach,
                group=group,
                input_of=input_of,
                local_input=local_input,
            )
        )
    return tuple(found)


def _scalars(value: Any, span: Span) -> Iterator[tuple[str, Span]]:
    if isinstance(value, Seq):
        for item, item_span in zip(value, value.spans, strict=False):
            yield from _scalars(item, item_span)
    elif isinstance(value, Map):
        for key, item in value.items():
            yield from _scalars(item, value.span_of(key))
    elif value is not None:
        yield str(value), span


def script(value: Any, span: Span, sources: Sources, env_files: tuple[str, ...] = ()) -> Script:
    """A script (a string or a list of strings) with the source line of each line."""
    parts = list(_scalars(value, span))
    lines = tuple(
        ScriptLine(Where(part_span.file, number), raw)
        for _, part_span in parts
        for number, raw in sources.between(part_span)
    )
    return Script("\n".join(t for t, _ in parts), lines, env_files)


def scripts_of(
    block: Map, keys: tuple[str, ...], sources: Sources, env_files: tuple[str, ...] = ()
) -> tuple[Script, ...]:
    return tuple(
        script(block[k], block.span_of(k), sources, env_files)
        for k in keys
        if block.get(k) is not None
    )


def action_name(uses: str) -> str:
    """`Owner/Repo/path@v4` -> `owner/repo/path`; local (`./x`) and docker references kept."""
    if uses.startswith(("./", "docker://")):
        return uses
    return uses.split("@", 1)[0].lower()

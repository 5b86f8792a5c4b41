"""YAML read node by node: every value remembers the file and the lines it came from.

Findings must point at the line a reviewer changes, also when the value came through an
anchor, a merge key (`<<:`) or another file (GitLab `include:`), so each mapping keeps, per
key, the place of the key and of its value. Scalars stay text (GitHub's `on:` stays `on`,
`false` stays `false`): the rules compare words, not YAML 1.1 booleans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nhi_invoke.errors import ConfigError

MAX_DEPTH = 100
NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Span:
    """Where a value is: its file, its key's line (or item line) and its first and last line."""

    file: str
    key_line: int
    line: int
    end: int


class Map(dict[str, Any]):
    """A YAML mapping that remembers where it and each of its values are."""

    def __init__(self, span: Span) -> None:
        super().__init__()
        self.span = span
        self.spans: dict[str, Span] = {}

    def span_of(self, key: str) -> Span:
        return self.spans.get(key, self.span)

    def line_of(self, key: str) -> int:
        return self.span_of(key).key_line


class Seq(list[Any]):
    """A YAML sequence that remembers where it and each item are, and its tag (`!reference`)."""

    def __init__(self, span: Span, tag: str = "") -> None:
        super().__init__()
        self.span = span
        self.spans: list[Span] = []
        self.tag = tag


class UnreadableYaml(ConfigError):
    """A file that is not YAML, with the line where reading stopped."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(
            f"{file} is not valid YAML (line {line}): {reason}",
            "fix the file, or leave it out with --exclude",
        )
        self.file = file
        self.line = line
        self.reason = reason


def _span(file: str, node: Any, key_line: int | None = None) -> Span:
    line = node.start_mark.line + 1
    end_mark = node.end_mark
    # A block scalar ends at column 0 of the line after its last line.
    end = (
        end_mark.line
        if end_mark.column == 0 and end_mark.line > node.start_mark.line
        else (end_mark.line + 1)
    )
    return Span(file, key_line if key_line is not None else line, line, max(line, end))


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.done: dict[int, Any] = {}  # anchors: one node, one value

    def value(self, node: Any, key_line: int | None, depth: int) -> Any:
        import yaml  # noqa: PLC0415

        if depth > MAX_DEPTH:
            raise UnreadableYaml(self.file, node.start_mark.line + 1, "nested too deep")
        if id(node) in self.done:
            return self.done[id(node)]
        if isinstance(node, yaml.MappingNode):
            mapping = Map(_span(self.file, node, key_line))
            self.done[id(node)] = mapping
            merged: list[Map] = []
            for key_node, value_node in node.value:
                key_at = key_node.start_mark.line + 1
                if key_node.tag == MERGE_TAG or (
                    isinstance(key_node, yaml.ScalarNode) and key_node.value == "<<"
                ):
                    source = self.value(value_node, key_at, depth + 1)
                    merged += [
                        m
                        for m in (source if isinstance(source, list) else [source])
                        if isinstance(m, Map)
                    ]
                    continue
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                mapping[key] = self.value(value_node, key_at, depth + 1)
                mapping.spans[key] = _span(self.file, value_node, key_at)
            for source in merged:  # explicit keys win, then the first merged mapping
                for key, item in source.items():
                    if key not in mapping:
                        mapping[key] = item
                        mapping.spans[key] = source.span_of(key)
            return mapping
        if isinstance(node, yaml.SequenceNode):
            tag = node.tag if node.tag.startswith("!") else ""
            sequence = Seq(_span(self.file, node, key_line), tag)
            self.done[id(node)] = sequence
            for item in node.value:
                sequence.append(self.value(item, None, depth + 1))
                sequence.spans.append(_span(self.file, item))
            return sequence
        if node.tag == NULL_TAG and node.value in ("", "~", "null", "Null", "NULL"):
            return None
        return str(node.value)


def _loader() -> Any:
    import yaml  # noqa: PLC0415

    # libyaml when installed: the same nodes and marks, several times faster.
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_documents(file: str, text: str) -> list[Any]:
    """Every YAML document of `text`, as Map/Seq/str/None values that know their lines."""
    import yaml  # noqa: PLC0415

    try:
        nodes = list(yaml.compose_all(text, Loader=_loader()))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise UnreadableYaml(file, line, str(exc.problem or exc.context or "unreadable")) from exc
    except (yaml.YAMLError, ValueError) as exc:  # e.g. a control character
        raise UnreadableYaml(
            file, 1, str(exc).splitlines()[0] if str(exc) else "unreadable"
        ) from exc
    except RecursionError as exc:
        raise UnreadableYaml(file, 1, "nested too deep") from exc
    builder = _Builder(file)
    try:
        return [None if node is None else builder.value(node, None, 0) for node in nodes]
    except RecursionError as exc:
        raise UnreadableYaml(file, 1, "nested too deep") from exc


def load_yaml(file: str, text: str) -> Any:
    """The document of a one-document file (GitLab's `spec:` header document is skipped)."""
    documents = [d for d in load_documents(file, text) if d is not None]
    if len(documents) == 2 and isinstance(documents[0], Map) and set(documents[0]) == {"spec"}:
        return documents[1]
    return documents[0] if documents else None


def text_of(value: Any) -> str:
    """All the text in a value (scripts given as lists, folded blocks…), newline-joined."""
    if isinstance(value, list):
        return "\n".join(text_of(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(text_of(v) for v in value.values())
    return "" if value is None else str(value)

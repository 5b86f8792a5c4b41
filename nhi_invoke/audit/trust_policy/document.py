"""A policy document read from JSON with the line of every key and value, to place findings.

The standard library's parser checks the text first (its error messages are the ones users
know); a small scanner then walks the same text for positions.
"""

from __future__ import annotations

import bisect
import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_SPACE = re.compile(r"[ \t\n\r]*")
MAX_DEPTH = 100


class JObject(dict[str, Any]):
    """A JSON object that remembers its line and the line of each key and each value."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}
        self.value_lines: dict[str, int] = {}

    def key_line(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def value_line(self, key: str) -> int:
        return self.value_lines.get(key, self.line)


class JArray(list[Any]):
    """A JSON array that remembers its line and the line of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.breaks = [m.start() for m in re.finditer("\n", text)]
        self.at = 0

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.breaks, offset - 1) + 1

    def skip(self) -> None:
        self.at = _SPACE.match(self.text, self.at).end()  # type: ignore[union-attr]

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError("nested too deep")
        self.skip()
        char = self.text[self.at : self.at + 1]
        if char == "{":
            return self._object(depth)
        if char == "[":
            return self._array(depth)
        if char == '"':
            text, self.at = scanstring(self.text, self.at + 1)
            return text
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.at):
                self.at += len(word)
                return value
        number = _NUMBER.match(self.text, self.at)
        if number is None:
            raise ValueError(f"unexpected character at offset {self.at}")
        self.at = number.end()
        return json.loads(number.group(0))

    def _object(self, depth: int) -> JObject:
        found = JObject(self.line(self.at))
        self.at += 1
        self.skip()
        if self.text.startswith("}", self.at):
            self.at += 1
            return found
        while True:
            self.skip()
            key_line = self.line(self.at)
            key, self.at = scanstring(self.text, self.at + 1)
            self.skip()
            self.at += 1  # ':'
            self.skip()
            value_line = self.line(self.at)
            found[key] = self.value(depth + 1)
            found.key_lines[key] = key_line
            found.value_lines[key] = value_line
            self.skip()
            closing = self.text[self.at]
            self.at += 1
            if closing == "}":
                return found

    def _array(self, depth: int) -> JArray:
        found = JArray(self.line(self.at))
        self.at += 1
        self.skip()
        if self.text.startswith("]", self.at):
            self.at += 1
            return found
        while True:
            self.skip()
            found.item_lines.append(self.line(self.at))
            found.append(self.value(depth + 1))
            self.skip()
            closing = self.text[self.at]
            self.at += 1
            if closing == "]":
                return found


def parse(text: str) -> Any:
    """The JSON value of `text` as JObject/JArray/scalars; ValueError when it is not JSON."""
    json.loads(text)  # the standard library's checks and messages
    return _Scanner(text).value(0)


def as_text(document: Any) -> str:
    """A document given as data (read through IAM, or built in a test), as the JSON it shows."""
    return json.dumps(document, indent=2, default=str)

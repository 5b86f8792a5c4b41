"""Every `nhi-invoke` command line the documentation shows, found where a reader finds it.

Read from README.md, every `docs/*.md` page and every file of `ci-examples/`:

- Markdown code blocks: `sh`/`bash`/`shell` blocks and blocks without a language hold shell
  lines (continuations joined, `&&`/`;`/`|` split, `$(…)` looked into); `console` blocks hold
  `$ ` lines, and a `$ echo $?` after one gives the exit code the line ends with; `yaml`
  blocks are read as CI files. Other blocks (output, JSON, TOML) hold no command.
- Inline code spans that start with `nhi-invoke `.
- CI files (and yaml blocks): every string is a script (YAML's `>` blocks folded by the YAML
  parser); a step that `uses: nhi-invoke/nhi-invoke@…` runs `nhi-invoke run` with the action's
  inputs as the variables `action.yml` sets from them.

Before its `--`, a line with `[`, `|`, `...`, `…`, a `<placeholder>` or an upper-case word
(`FILE`, `COMMAND`) is a *synopsis*, a command's grammar: its options are checked against the
command's help rather than run. What the CI substitutes is substituted in a documented way
(`VARIABLES`, `INPUTS`, `CONTEXTS`; a matrix runs every leg); a line that needs a value not
listed there fails, so that a new kind of placeholder is a decision.
"""

from __future__ import annotations

import itertools
import re
import shlex
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"sh", "bash", "shell", ""}
SYNOPSIS = re.compile(r"\[|\||\.\.\.|…|(?:^|\s)[A-Z][A-Z_]+(?:\s|$)")
PLACEHOLDER = re.compile(r"<[\w -]+>")
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`(nhi-invoke [^`]+)`")
ACTION = "nhi-invoke/nhi-invoke@"

# Variables a CI sets that the examples' command lines use, with values of the right form.
VARIABLES = {
    "BITBUCKET_WORKSPACE_UUID": "{d5e3c4a1-0000-4000-8000-000000000001}",
    "CIRCLE_ORGANIZATION_ID": "0b3f5a9c-1d2e-4f60-8a7b-9c0d1e2f3a4b",
    "RUNNER_TEMP": "/home/runner/work/_temp",
    "HOME": "/home/runner",
}
# Inputs of ci-examples/github/reusable-workflow.yml, as the caller in its header passes them.
INPUTS = {"role-arn": "arn:aws:iam::111122223333:role/deploy-web", "script": "./deploy.sh"}
CONTEXTS = {"runner.temp": VARIABLES["RUNNER_TEMP"]}


@dataclass(frozen=True)
class Documented:
    """One documented command line, ready to run (or, a synopsis, to check)."""

    where: str  # "README.md:12"
    text: str  # as the reader sees it
    argv: tuple[str, ...] = ()  # the words after `nhi-invoke`
    expected: int = 0
    synopsis: bool = False
    action_env: tuple[tuple[str, str], ...] = ()  # a `uses: nhi-invoke/...` step's variables
    config: str | None = None  # the nhi-invoke.toml its page shows
    problem: str = ""  # why it cannot be run as documented (a test failure)
    inline: bool = False  # a code span in prose: `nhi-invoke audit show` may only name a command

    @property
    def name(self) -> str:
        return f"{self.where} {self.text[:70]}"


class Unresolved(Exception):
    """A value the documentation leaves to the CI that this module does not know."""


def _logical_lines(script: str) -> list[tuple[int, str]]:
    """Lines with shell continuations joined, and the offset of each."""
    out: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, line in enumerate(script.splitlines()):
        if not buffer:
            start = number
        if line.rstrip().endswith("\\"):
            buffer += line.rstrip()[:-1] + " "
            continue
        out.append((start, buffer + line))
        buffer = ""
    if buffer:
        out.append((start, buffer))
    return out


def _pieces(line: str) -> list[str]:
    """The commands of a shell line: split at `&&`, `||`, `;`, `|` outside quotes."""
    pieces, current, quote, i = [], "", "", 0
    while i < len(line):
        ch = line[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (not current or current[-1].isspace()):
            break  # a comment
        elif line.startswith(("&&", "||"), i) or ch in ";|":
            pieces.append(current)
            current = ""
            i += 2 if line.startswith(("&&", "||"), i) else 1
            continue
        current += ch
        i += 1
    return [p.strip() for p in [*pieces, current] if p.strip()]


def _expand(word: str, env: Mapping[str, str]) -> str:
    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in env:
            return env[name]
        if name in VARIABLES:
            return VARIABLES[name]
        raise Unresolved(f"${name}")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", variable, word)


KEYWORDS = {"if", "then", "else", "elif", "do", "exec", "time", "!"}


def commands_in_script(script: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """The `nhi-invoke …` commands of a shell script, as text with `nhi-invoke` first."""
    env = env or {}
    for _offset, line in _logical_lines(script):
        for piece in _pieces(line):
            inner = re.findall(r"\$\((nhi-invoke [^)]*)\)", piece)
            if inner:
                yield from inner
                continue
            try:
                words = shlex.split(piece)
            except ValueError:
                continue
            while words and words[0] in KEYWORDS:
                words.pop(0)
            if not words:
                continue
            first = words[0]
            try:
                program = _expand(first, env) if "$" in first else first
            except Unresolved:
                continue
            if program == "nhi-invoke" or program.endswith("/nhi-invoke"):
                yield shlex.join(["nhi-invoke", *words[1:]])


def _argv(text: str, env: Mapping[str, str]) -> tuple[str, ...]:
    words = shlex.split(text, comments=True)
    for stop in (">", ">>", "<", "2>", "2>&1"):
        if stop in words:
            words = words[: words.index(stop)]
    # After `--` the words are the user's command's: its variables (often quoted for the
    # command's own shell, `sh -c 'test -n "$KEY"'`) are the command's to expand.
    end = words.index("--") if "--" in words else len(words)
    return tuple(_expand(w, env) for w in words[1:end]) + tuple(words[end:])


def _document(where: str, text: str, env: Mapping[str, str], **extra: Any) -> Documented:
    own, _, theirs = text.partition(" -- ")  # after `--`, the words are the user's command's
    if PLACEHOLDER.search(text) or SYNOPSIS.search(own) or re.fullmatch(r"[A-Z_]+", theirs):
        return Documented(where, text, synopsis=True, **extra)
    try:
        return Documented(where, text, _argv(text, env), **extra)
    except Unresolved as missing:
        return Documented(where, text, problem=f"no value for {missing}", **extra)


# -- CI files --------------------------------------------------------------------------------


def _matrix_legs(document: Any) -> list[dict[str, str]]:
    """Every leg of the first matrix in a workflow (one empty leg when there is none)."""
    found: list[dict[str, list[Any]]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            matrix = node.get("matrix")
            if isinstance(matrix, dict):
                found.append({k: v for k, v in matrix.items() if isinstance(v, list)})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    if not found or not found[0]:
        return [{}]
    names = list(found[0])
    return [
        dict(zip(names, values, strict=True)) for values in itertools.product(*found[0].values())
    ]


def _substitute(text: str, leg: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("matrix.") and expression[7:] in leg:
            return str(leg[expression[7:]])
        if expression.startswith("inputs.") and expression[7:] in INPUTS:
            return INPUTS[expression[7:]]
        if expression in CONTEXTS:
            return CONTEXTS[expression]
        raise Unresolved("${{ " + expression + " }}")

    return EXPRESSION.sub(value, text)


def action_inputs() -> dict[str, str]:
    """input name -> the variable `action.yml` sets from it (the `run` step's `env:`)."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    mapping = {}
    for step in action["runs"]["steps"]:
        for variable, value in (step.get("env") or {}).items():
            match = re.fullmatch(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", str(value))
            if match:
                mapping[match.group(1)] = variable
    return mapping


def _step_env(
    node: dict[str, Any], env: Mapping[str, str], leg: Mapping[str, str]
) -> dict[str, str]:
    """The variables a job or step sets (`env:`), over those it inherits."""
    scope = dict(env)
    declared = node.get("env")
    if isinstance(declared, dict):
        for key, value in declared.items():
            try:
                scope[str(key)] = _substitute(str(value), leg)
            except Unresolved:
                continue  # a secret or context no command line of ours reads
    return scope


def _action_step(node: dict[str, Any], where: str, leg: Mapping[str, str]) -> Documented:
    """A step that uses the action: `nhi-invoke run` with the variables its inputs become."""
    inputs = action_inputs()
    given = node.get("with") or {}
    text = f"uses: {node['uses'].split()[0]} with " + ", ".join(
        f"{k}: {v}" for k, v in given.items()
    )
    try:
        variables = {
            inputs[key]: _substitute(str(value), leg)
            for key, value in given.items()
            if key in inputs and key not in ("run", "shell", "python-version")
        }
    except Unresolved as missing:
        return Documented(where, text, problem=f"no value for {missing}")
    return Documented(where, text, ("run",), action_env=tuple(sorted(variables.items())))


def from_yaml(text: str, where: str, config: str | None = None) -> list[Documented]:
    """The commands of a CI file (or of a yaml block of a page)."""
    try:
        document = yaml.safe_load(textwrap.dedent(text))
    except yaml.YAMLError:
        # A broken file is an example of its own (audit.md's unparsable-file); one that
        # holds a command line must parse, or the line cannot be checked.
        return [Documented(where, text[:60], problem="not YAML")] if "nhi-invoke" in text else []
    found: list[Documented] = []

    def walk(node: Any, env: Mapping[str, str], leg: Mapping[str, str]) -> None:
        if isinstance(node, dict):
            uses = node.get("uses")
            if isinstance(uses, str) and uses.startswith(ACTION):
                found.append(_action_step(node, where, leg))
                return
            scope = _step_env(node, env, leg)
            for key, value in node.items():
                if key != "env":  # variables, not scripts
                    walk(value, scope, leg)
        elif isinstance(node, list):
            for value in node:
                walk(value, env, leg)
        elif isinstance(node, str) and ("nhi-invoke" in node or "$" in node):
            try:
                script = _substitute(node, leg)
                for command in commands_in_script(script, env):
                    found.append(_document(where, command, env, config=config))
            except Unresolved as missing:
                found.append(Documented(where, node[:60], problem=f"no value for {missing}"))

    for leg in _matrix_legs(document):
        walk(document, {}, leg)
    return list(dict.fromkeys(found))


# -- pages -----------------------------------------------------------------------------------


def _page_config(text: str) -> str | None:
    """The nhi-invoke.toml a page shows (a toml block that starts by naming the file)."""
    for lang, body in BLOCK.findall(text):
        if lang == "toml" and body.startswith("# nhi-invoke.toml"):
            return body
    return None


def _console(body: str, where: str, config: str | None) -> list[Documented]:
    found: list[Documented] = []
    lines = body.splitlines()
    for number, line in enumerate(lines):
        if not line.startswith("$ "):
            continue
        command = line[2:]
        if command == "echo $?":
            if found and number + 1 < len(lines):
                last = found.pop()
                found.append(
                    Documented(
                        last.where, last.text, last.argv, int(lines[number + 1]), config=config
                    )
                )
            continue
        for text in commands_in_script(command):
            found.append(_document(where, text, {}, config=config))
    return found


def from_markdown(path: Path) -> list[Documented]:
    text = path.read_text()
    name = str(path.relative_to(ROOT))
    config = _page_config(text)
    found: list[Documented] = []
    spans = []
    for match in BLOCK.finditer(text):
        lang, body = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 2
        where = f"{name}:{line}"
        spans.append((match.start(), match.end()))
        if lang == "console":
            found += _console(body, where, config)
        elif lang in SHELL_LANGS:
            found += [_document(where, c, {}, config=config) for c in commands_in_script(body)]
        elif lang in ("yaml", "yml"):
            found += from_yaml(body, where, config)
    for match in INLINE.finditer(text):
        if any(start <= match.start() < end for start, end in spans):
            continue
        line = text.count("\n", 0, match.start()) + 1
        found.append(_document(f"{name}:{line}", match.group(1), {}, config=config, inline=True))
    return found


def pages() -> list[Path]:
    """README.md and every page of docs/ (pages that land later are found too)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def ci_files() -> list[Path]:
    return sorted(p for p in (ROOT / "ci-examples").rglob("*") if p.is_file())


def documented() -> list[Documented]:
    found: list[Documented] = []
    for page in pages():
        found += from_markdown(page)
    for path in ci_files():
        found += from_yaml(path.read_text(), str(path.relative_to(ROOT)))
    return found

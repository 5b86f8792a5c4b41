"""How every command's help is drawn: plain text that reads the same in a terminal, a pipe
and a CI log, at 80 columns.

typer's rich panels cut option names at 80 columns, take `[env: …]` for markup and drop
it, and draw boxes that a CI log garbles; click's plain formatter breaks words at hyphens
(`--role-\\narn`). This formatter never breaks a word, puts an option whose name is long
on a line of its own with its help below it, and `run`'s help is drawn from the option
registry itself (`run_options`), so that every option shows its variables, its
nhi-invoke.toml key and its default exactly as the code reads them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup, TyperOption

HELP_OPTIONS = ["-h", "--help"]
INDENT = 2  # of a section's entries
BELOW = 6  # of help written under a long option name
COLUMN = 24  # a definition list's first column, at most


def wrap(text: str, width: int, indent: str) -> list[str]:
    """Lines of at most `width` (counting the indent), broken only at spaces."""
    return textwrap.wrap(
        text,
        width=max(width, len(indent) + 20),
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


class PlainFormatter(click.HelpFormatter):
    """click's formatter, without breaking words at hyphens or option names anywhere."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        paragraphs = [p for p in text.split("\n\n") if p.strip()]
        for number, paragraph in enumerate(paragraphs):
            if number:
                self.write("\n")
            if paragraph.lstrip("\n").startswith("\b"):
                # click's marker for a block that keeps its lines (an example).
                for line in paragraph.lstrip("\n")[1:].strip("\n").splitlines():
                    self.write(f"{indent}{line}\n")
                continue
            self.write("\n".join(wrap(" ".join(paragraph.split()), self.width, indent)) + "\n")

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = COLUMN, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        if not rows:
            return
        first = min(max(len(term) for term, _ in rows), col_max) + col_spacing
        indent = " " * self.current_indent
        for term, text in rows:
            lead = f"{indent}{term}"
            lines = wrap(" ".join(text.split()), self.width, " " * (self.current_indent + first))
            if not text:
                self.write(lead + "\n")
            elif len(term) <= first - col_spacing:
                self.write(lead + lines[0][len(lead) :] + "\n")
                self.write("".join(line + "\n" for line in lines[1:]))
            else:
                # A long name keeps its line; its help goes below, indented as the others'.
                self.write(lead + "\n" + "".join(line + "\n" for line in lines))

    def write_entry(self, term: str, text: str) -> None:
        """An option on its own line, its help wrapped below it (as `run`'s help shows them)."""
        indent = " " * self.current_indent
        self.write(f"{indent}{term}\n")
        for paragraph in text.split("\n"):
            for line in wrap(paragraph, self.width, " " * (self.current_indent + BELOW - 2)):
                self.write(line + "\n")

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        self.write_paragraph()
        self.write_heading(name)
        self.indent()
        try:
            yield
        finally:
            self.dedent()


class HelpContext(click.Context):
    formatter_class = PlainFormatter


class NhiCommand(TyperCommand):
    """A command whose help is plain text (see the module's docstring)."""

    context_class = HelpContext

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            # An option declared without a metavar reads `--x TEXT`, not typer's `<str>`.
            if isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
                param.metavar = param.type.name.upper()

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        # `completion SHELL`, as click writes a required argument, not typer's `{SHELL}`.
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class NhiGroup(TyperGroup):
    """A group whose help is plain text, and which lists its commands in the order declared."""

    context_class = HelpContext

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Each command's first sentence in full, wrapped (click cuts it to the width left).
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=300)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class NhiTyper(typer.Typer):
    """A typer app whose groups and commands draw plain help and take `-h`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", NhiGroup)
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("no_args_is_help", True)
        settings = {"help_option_names": HELP_OPTIONS, **kwargs.pop("context_settings", {})}
        super().__init__(context_settings=settings, **kwargs)

    def command(  # type: ignore[override]
        self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        settings = {"help_option_names": HELP_OPTIONS, **kwargs.pop("context_settings", {})}
        return super().command(*args, cls=cls or NhiCommand, context_settings=settings, **kwargs)

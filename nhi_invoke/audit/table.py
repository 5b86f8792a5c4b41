"""Audit findings for a person: one table, most severe first, then what was read."""

from __future__ import annotations

import sys
from typing import Any

from nhi_invoke.audit.findings import SEVERITIES, Finding
from nhi_invoke.figures import plural

SEVERITY_STYLE = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def _console() -> Any:
    from rich.console import Console  # noqa: PLC0415

    # Off a terminal (CI logs) wide enough that tables do not fold.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def findings(results: tuple[Finding, ...] | list[Finding], scope: str) -> None:
    """Print findings, most severe first, under a title naming how many and where."""
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    console = _console()
    if not results:
        console.print(f"no findings in {escape(scope)}", highlight=False)
        return
    title = f"{plural(len(results), 'finding')} in {escape(scope)}"
    table = Table(title=title, title_justify="left")
    for column in ("where", "severity", "kind", "rule", "finding", "fix"):
        table.add_column(column, overflow="fold")
    for item in sorted(results, key=lambda f: (-SEVERITIES.index(f.severity), f.file, f.line)):
        style = SEVERITY_STYLE.get(item.severity, "")
        table.add_row(
            escape(f"{item.file}:{item.line}"),
            f"[{style}]{item.severity}[/{style}]",
            item.kind,
            item.rule,
            escape(item.message),
            escape(item.fix),
        )
    console.print(table)


def lines(text: str) -> None:
    """Plain lines, printed as they are (file names may hold rich markup characters)."""
    _console().print(text, markup=False, highlight=False)

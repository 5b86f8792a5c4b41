"""DuckDB, embedded: reads many (gzipped) JSON files in one streaming query, in bounded memory.

Imported only by `audit trace`, and DuckDB itself only when a log is read: it is an optional
extra (`nhi_invoke.install_hint("trace")`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nhi_invoke import install_hint
from nhi_invoke.audit.trace.files import LogFile
from nhi_invoke.audit.trace.model import Problem
from nhi_invoke.errors import ConfigError

# read_json_objects' default limit on one JSON value. A CloudTrail file is a single
# `{"Records": [...]}` value and can exceed it; the limit is raised to the largest file,
# not beyond: DuckDB allocates buffers of that size per thread.
DEFAULT_OBJECT_BYTES = 16 * 1024 * 1024
OBJECT_MARGIN_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Scan:
    """What one query over a group of files returned, and which files it could not read."""

    rows: list[tuple[Any, ...]]
    problems: list[Problem]


# Builds the query for one source given the relation that reads the files (`read_json_objects
# (...)` with one column, `json`, and `filename`).
QueryBuilder = Callable[[str], str]


class Engine:
    """One DuckDB connection for one trace."""

    def __init__(self) -> None:
        try:
            import duckdb  # noqa: PLC0415 - an optional extra, only for reading logs
        except ImportError as exc:
            raise ConfigError(
                "audit trace reads logs with DuckDB, which is not installed",
                install_hint("trace"),
            ) from exc
        self._error: type[Exception] = duckdb.Error
        self._con = duckdb.connect(
            config={
                # Rows come back in no particular order; not keeping it lets DuckDB stream.
                "preserve_insertion_order": False,
            }
        )
        # DuckDB draws a progress bar on the terminal for long queries: not in our output.
        self._con.execute("SET enable_progress_bar = false")

    def close(self) -> None:
        self._con.close()

    def scan(
        self,
        files: Sequence[LogFile],
        json_format: str,
        query: QueryBuilder,
        params: dict[str, Any],
        *,
        salvage_lines: bool = False,
        retry_format: str | None = None,
    ) -> Scan:
        """Run `query` over all `files` at once; when that fails, file by file, so that one
        bad file costs only itself and is named. `retry_format` is tried on a file the first
        format cannot read; `salvage_lines` reads a JSON Lines file up to its broken lines."""
        groups: dict[bool, list[LogFile]] = {}
        for log in files:
            groups.setdefault(log.gzipped, []).append(log)
        rows: list[tuple[Any, ...]] = []
        problems: list[Problem] = []
        for gzipped, group in groups.items():
            try:
                rows += self._run(group, gzipped, json_format, query, params)
                continue
            except self._error:
                pass
            for log in group:
                read, error = self._one(log, (json_format, retry_format), query, params)
                if read is not None:
                    rows += read
                    continue
                salvaged = self._salvage(log, query, params) if salvage_lines else None
                if salvaged is not None:
                    rows += salvaged
                    problems.append(
                        Problem(
                            log.path,
                            "has lines that are not JSON (cut short while being written?); "
                            "the readable lines were used",
                        )
                    )
                    continue
                problems.append(_problem(log, error))
        return Scan(rows, problems)

    def _one(
        self,
        log: LogFile,
        formats: tuple[str, str | None],
        query: QueryBuilder,
        params: dict[str, Any],
    ) -> tuple[list[tuple[Any, ...]] | None, Exception | None]:
        """One file, in each format in turn: its rows, or the last error."""
        error: Exception | None = None
        for json_format in formats:
            if json_format is None:
                continue
            try:
                return self._run([log], log.gzipped, json_format, query, params), None
            except self._error as exc:
                error = exc
        return None, error

    def _run(
        self,
        group: Sequence[LogFile],
        gzipped: bool,
        json_format: str,
        query: QueryBuilder,
        params: dict[str, Any],
        ignore_errors: bool = False,
    ) -> list[tuple[Any, ...]]:
        largest = max(log.size for log in group)
        limit = max(DEFAULT_OBJECT_BYTES, largest + OBJECT_MARGIN_BYTES)
        relation = (
            "read_json_objects($files, format='{fmt}', compression='{compression}', "
            "filename=true, maximum_object_size={limit}{ignore})".format(
                fmt=json_format,
                compression="gzip" if gzipped else "none",
                limit=limit,
                ignore=", ignore_errors=true" if ignore_errors else "",
            )
        )
        arguments = {**params, "files": [log.path for log in group]}
        return self._con.execute(query(relation), arguments).fetchall()

    def _salvage(
        self, log: LogFile, query: QueryBuilder, params: dict[str, Any]
    ) -> list[tuple[Any, ...]] | None:
        try:
            return self._run(
                [log], log.gzipped, "newline_delimited", query, params, ignore_errors=True
            )
        except self._error:
            return None


def _problem(log: LogFile, error: Exception | None) -> Problem:
    text = str(error).lower()
    if "gzip" in text or "inflate" in text or "compress" in text:
        return Problem(log.path, "is a corrupt or truncated gzip file; skipped")
    if "maximum_object_size" in text or "object size" in text:
        return Problem(log.path, "holds a JSON value larger than its own size says; skipped")
    if "json" in text:
        return Problem(log.path, "is not valid JSON (truncated?); skipped")
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return Problem(log.path, f"could not be read ({first}); skipped")

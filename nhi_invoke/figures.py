"""Figures for people: durations, times and counts as a reader expects them (`14m 59s`,
`2026-12-03T11:45:14Z`, `1 finding`). JSON output keeps the exact numbers."""

from __future__ import annotations

from datetime import UTC, datetime


def duration(seconds: float) -> str:
    """`14m 59s`, `1h 23m 20s`, `15m`, `0s`: rounded to the second."""
    total = int(abs(seconds) + 0.5)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not (hours or minutes) else "")
    return ("-" if seconds < 0 and total else "") + " ".join(p for p in parts if p)


def moment(when: datetime) -> str:
    """ISO 8601 in UTC, to the second: `2026-12-03T11:45:14Z`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(seconds: float) -> str:
    """A JWT's NumericDate (seconds since 1970) as `moment` writes it."""
    return moment(datetime.fromtimestamp(seconds, UTC))


def plural(count: int, noun: str, nouns: str = "") -> str:
    """`1 finding`, `2 findings` (`nouns` when the plural is not just an s more)."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"

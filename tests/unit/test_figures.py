"""Figures for people: what `audit show`, `token`, the plan and the errors write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from nhi_invoke.figures import duration, epoch, moment, plural


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (899.436, "14m 59s"),
        (899.6, "15m"),
        (900, "15m"),
        (0.2, "0s"),
        (59, "59s"),
        (3600, "1h"),
        (5000, "1h 23m 20s"),
        (43200, "12h"),
        (-125, "-2m 5s"),
    ],
)
def test_a_duration_reads_in_hours_minutes_and_seconds(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_a_time_is_iso_8601_in_utc_to_the_second() -> None:
    paris = timezone(timedelta(hours=1))
    assert moment(datetime(2026, 12, 3, 12, 45, 14, 987000, tzinfo=paris)) == "2026-12-03T11:45:14Z"
    assert moment(datetime(2026, 12, 3, 11, 45, 14, tzinfo=UTC)) == "2026-12-03T11:45:14Z"
    assert epoch(1_796_282_940) == "2026-12-03T07:29:00Z"


def test_plurals_are_right() -> None:
    assert plural(1, "finding") == "1 finding"
    assert plural(0, "finding") == "0 findings"
    assert plural(2, "trust policy", "trust policies") == "2 trust policies"

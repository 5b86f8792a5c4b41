"""`audit verify`'s checks: every kind of tampering is found at the right line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nhi_invoke.ledger.key import LedgerKey
from nhi_invoke.ledger.store import GENESIS, Ledger, line_hash
from nhi_invoke.ledger.verify import verify

MOMENT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEY = LedgerKey(b"a-test-key-of-sufficient-length", "test")


def _ledger(tmp_path: Path, key: LedgerKey | None = None, lines: int = 5) -> Path:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(str(path), "inv", "step", key=key)
    for number in range(1, lines + 1):
        ledger.append("event", MOMENT, n=number)
    return path


def _edit(path: Path, change: Callable[[list[str]], object]) -> None:
    lines = path.read_text().splitlines()
    change(lines)
    path.write_text("\n".join(lines) + "\n")


def test_an_untouched_ledger_verifies(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    result = verify(str(path))
    assert result.ok
    assert result.lines == 5
    assert result.head == line_hash(path.read_text().splitlines()[-1].encode())


@pytest.mark.parametrize(
    ("tamper", "broken_line"),
    [
        (lambda lines: lines.__setitem__(1, lines[1].replace('"n":2', '"n":7')), 3),
        (lambda lines: lines.pop(2), 3),
        (lambda lines: lines.insert(1, lines.pop(2)), 2),
        (lambda lines: lines.insert(2, lines[1]), 3),
        (lambda lines: lines.pop(0), 1),
    ],
    ids=["edited field", "deleted line", "swapped lines", "inserted line", "deleted first"],
)
def test_tampering_is_found_at_the_first_broken_line(
    tamper: callable,
    broken_line: int,  # type: ignore[valid-type]
    tmp_path: Path,
) -> None:
    path = _ledger(tmp_path)
    _edit(path, tamper)
    result = verify(str(path))
    assert not result.ok
    assert result.broken_line == broken_line


def test_with_a_key_an_edited_line_is_found_at_itself(tmp_path: Path) -> None:
    path = _ledger(tmp_path, KEY)
    _edit(path, lambda lines: lines.__setitem__(1, lines[1].replace('"n":2', '"n":7')))
    result = verify(str(path), KEY)
    assert result.broken_line == 2
    assert "wrong HMAC" in str(result.reason)


def test_with_a_key_a_chain_recomputed_without_it_is_caught(tmp_path: Path) -> None:
    path = _ledger(tmp_path, KEY)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records[2]["n"] = 99  # the forger edits line 3 and re-chains everything after it
    previous, rebuilt = GENESIS, []
    for record in records:
        record["prev"] = previous
        line = json.dumps(record, separators=(",", ":"))
        rebuilt.append(line)
        previous = line_hash(line.encode())
    path.write_text("\n".join(rebuilt) + "\n")
    assert verify(str(path)).ok  # the chain alone is fooled...
    assert verify(str(path), KEY).broken_line == 3  # ...the HMAC is not


def test_a_line_without_hmac_fails_when_a_key_is_given(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    assert "no HMAC" in str(verify(str(path), KEY).reason)


def test_a_cut_ledger_is_caught_with_the_head(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    head = verify(str(path)).head
    _edit(path, lambda lines: lines.pop())
    assert verify(str(path)).ok
    assert not verify(str(path), expected_head=head).ok

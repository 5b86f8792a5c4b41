"""The ledger: hash chain, private file, no lost or interleaved lines under concurrency."""

from __future__ import annotations

import json
import multiprocessing
import stat
from datetime import UTC, datetime
from pathlib import Path

from nhi_invoke.ledger.store import GENESIS, Ledger, line_hash
from nhi_invoke.ledger.verify import verify

MOMENT = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def test_each_line_chains_to_the_previous(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger = Ledger(str(path), "inv1", "step")
    ledger.append("invocation.started", MOMENT)
    head = ledger.append("invocation.finished", MOMENT, exit_code=0)
    lines = path.read_bytes().splitlines()
    assert json.loads(lines[0])["prev"] == GENESIS
    assert json.loads(lines[1])["prev"] == line_hash(lines[0])
    assert head == line_hash(lines[1])
    assert json.loads(lines[0])["time"] == "2026-11-28T12:00:00.000Z"
    assert verify(str(path)).ok


def test_the_ledger_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "l.jsonl"
    Ledger(str(path), "i", "s").append("e", MOMENT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_edited_line_breaks_the_chain_at_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger = Ledger(str(path), "i", "s")
    for n in range(4):
        ledger.append("e", MOMENT, n=n)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"n":1', '"n":9')
    path.write_text("\n".join(lines) + "\n")
    assert verify(str(path)).broken_line == 3


def _append_many(path: str, writer: int) -> None:
    ledger = Ledger(path, f"inv{writer}", "s")
    for n in range(40):
        ledger.append("e", datetime.now(UTC), n=n, padding="x" * 300)


def test_concurrent_writers_lose_and_interleave_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "l.jsonl")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(path, w)) for w in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    lines = Path(path).read_text().splitlines()
    assert len(lines) == 16 * 40
    assert all(json.loads(line)["padding"] == "x" * 300 for line in lines)
    assert verify(path).ok

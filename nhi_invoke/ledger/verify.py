"""`nhi-invoke audit verify`: the hash chain, line by line, and each line's HMAC with a key."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from nhi_invoke.ledger.key import LedgerKey
from nhi_invoke.ledger.store import GENESIS, line_hash, serialize
from nhi_invoke.ledger.store import lines as ledger_lines


@dataclass(frozen=True)
class Verification:
    """The result of checking a ledger."""

    lines: int
    head: str | None
    broken_line: int | None
    reason: str | None
    key_id: str | None  # the key the HMACs were checked with; None: chain only

    @property
    def ok(self) -> bool:
        return self.broken_line is None


def _hmac_problem(record: dict[str, Any], key: LedgerKey) -> str | None:
    claimed = record.pop("hmac", None)
    if claimed is None:
        return "has no HMAC (written without a key, or the HMAC was removed)"
    if record.get("key_id") != key.key_id:
        return f"was signed with key {record.get('key_id')}, not {key.key_id}"
    if not hmac.compare_digest(str(claimed), key.sign(serialize(record))):
        return "has a wrong HMAC: it was changed after it was written"
    return None


def verify(
    path: str, key: LedgerKey | None = None, expected_head: str | None = None
) -> Verification:
    """Check every line's `prev` (and HMAC, with a key); report the first broken line."""
    previous, count, seen = GENESIS, 0, {GENESIS: 0}

    def broken(number: int, reason: str) -> Verification:
        return Verification(count, previous, number, reason, key.key_id if key else None)

    for number, line in ledger_lines(path):
        count = number
        try:
            record = json.loads(line)
        except ValueError:
            return broken(number, "is not JSON")
        if not isinstance(record, dict):
            return broken(number, "is not a JSON object")
        if key is not None and (problem := _hmac_problem(dict(record), key)):
            return broken(number, problem)
        prev = record.get("prev")
        if prev != previous:
            if prev in seen and seen[prev] < number - 1:
                reason = (
                    f"follows line {seen[prev]}, not line {number - 1}: lines were "
                    "inserted or moved before it"
                )
            elif number > 1:
                reason = (
                    f"does not follow line {number - 1}: line {number - 1} was edited, "
                    "or a line before this one was deleted or moved"
                )
            else:
                reason = "is not the start of a ledger: lines before it were deleted"
            return broken(number, reason)
        previous = line_hash(line)
        seen[previous] = number
    if expected_head is not None and previous != expected_head:
        return broken(
            count,
            f"is not the head {expected_head[:16]}…: the ledger was cut or its last line changed",
        )
    return Verification(count, previous if count else None, None, None, key.key_id if key else None)

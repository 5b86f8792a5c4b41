"""docs/threat-model.md names the test behind each of its promises: each named test exists,
and the command it gives to regenerate the action's lock is the one the lock records."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
DOC = ROOT / "docs" / "threat-model.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_every_test_the_threat_model_names_exists() -> None:
    named = REFERENCE.findall(DOC.read_text())
    assert len(named) > 25
    for path, name in named:
        source = (ROOT / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{path}::{name}"


def test_the_lock_is_regenerated_by_the_command_the_threat_model_gives() -> None:
    lock_header = (ROOT / "action" / "requirements.lock").read_text().split("\n\n", 1)[0]
    recorded = next(
        line.strip("# ").strip()
        for line in lock_header.splitlines()
        if line.lstrip("# ").startswith("pip-compile ")
    )
    assert f"pip install pip-tools && {recorded}" in DOC.read_text()

"""The cut: nothing outside a broker's package names its cloud, and modules stay readable.

The same check as `git grep -il 'gcp\\|google' nhi_invoke/` (and likewise for AWS), over every
module on disk, so a new file is checked before it is committed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "nhi_invoke"
# Audits read other people's pipelines, policies and cloud logs, which name clouds by nature:
# the pipeline scanners (one module per CI dialect), the trust-policy linter, `audit trace`
# (CloudTrail, Cloud Audit Logs, and the SQL for the engines that hold them), with their
# commands. `audit show` reads our own ledger and must not.
AUDIT_RULES = re.compile(
    r"nhi_invoke/(audit/(pipelines|trust_policy|trace)/[a-z_]+\.py|cli/audit(_trace)?\.py)$"
)
# The Python API's typed surface: its keyword arguments are every broker's options, typed for a
# user's checker, and its SDK accessors say what they return (docs/agents.md).
PUBLIC_API = ("nhi_invoke/tasks/keywords.py", "nhi_invoke/tasks/sdks.py")
MAX_LINES = 400
TOO_LONG_FOR_NOW: set[str] = set()


def _modules() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _mentioning(pattern: str) -> set[str]:
    words = re.compile(pattern, re.IGNORECASE)
    return {path for path, text in _modules().items() if words.search(text)}


# The modules of a broker's sandbox emulator, beyond `sandbox/<broker>*.py`.
EMULATOR_PARTS = {"azure": re.compile(r"nhi_invoke/sandbox/(entra_[a-z_]+|tls)\.py$")}
# The servers a broker's emulator starts (OpenBao, and PostgreSQL behind it, for Vault).
EMULATOR_MODULES = {
    "vault": ("vault_emulator.py", "openbao.py", "postgres.py"),
}


def _allowed(broker: str, path: str) -> bool:
    # The registry names every broker; each broker's emulator names its cloud.
    named_here = (
        "nhi_invoke/brokers/__init__.py",
        f"nhi_invoke/sandbox/{broker}.py",
        *(f"nhi_invoke/sandbox/{name}" for name in EMULATOR_MODULES.get(broker, ())),
    )
    emulator = re.compile(rf"nhi_invoke/sandbox/{broker}_[a-z_]+\.py$")
    parts = EMULATOR_PARTS.get(broker)
    return (
        path.startswith(f"nhi_invoke/brokers/{broker}/")
        or path in named_here
        or emulator.search(path) is not None
        or (parts is not None and parts.search(path) is not None)
        or path in PUBLIC_API
        or AUDIT_RULES.search(path) is not None
    )


@pytest.mark.parametrize(
    ("broker", "words"),
    [
        ("gcp", r"gcp|google"),
        ("aws", r"aws|amazon|boto"),
        ("azure", r"azure|\bentra\b|microsoft"),  # not "eu-central-1"
        # Azure Key Vault (vault.azure.net) is Azure's, not this broker's.
        ("vault", r"\bvault\b(?!\.azure)|openbao|\bbao\b"),
    ],
)
def test_only_the_brokers_package_names_its_cloud(broker: str, words: str) -> None:
    found = _mentioning(words)
    assert f"nhi_invoke/brokers/{broker}/declaration.py" in found  # the scan sees them
    assert sorted(path for path in found if not _allowed(broker, path)) == []


def test_modules_stay_readable_in_one_sitting() -> None:
    long = {
        path: text.count("\n")
        for path, text in _modules().items()
        if text.count("\n") > MAX_LINES and path not in TOO_LONG_FOR_NOW
    }
    assert long == {}

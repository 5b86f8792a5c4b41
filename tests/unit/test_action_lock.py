"""The action's hash-locked install: action/requirements.lock pins, by hash, every runtime
dependency nhi-invoke declares (and the setuptools that builds it), at versions its ranges
allow. The install itself is run by tests/e2e/test_action.py."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent.parent
LOCK = ROOT / "action" / "requirements.lock"
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+) \\$", re.MULTILINE)


def _locked() -> dict[str, str]:
    return {
        canonicalize_name(m["name"]): m["version"] for m in REQUIREMENT.finditer(LOCK.read_text())
    }


def _blocks() -> list[str]:
    """One block of text per locked requirement (its line and its hashes)."""
    text = LOCK.read_text()
    starts = [m.start() for m in REQUIREMENT.finditer(text)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def test_every_locked_requirement_is_pinned_and_hashed() -> None:
    blocks = _blocks()
    assert len(blocks) == len(_locked()) > 10
    for block in blocks:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block.splitlines()[0]
    lines = [
        line
        for line in LOCK.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "--hash"))
    ]
    assert all("==" in line for line in lines), "every requirement is pinned with =="


def test_the_lock_covers_every_runtime_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    locked = _locked()
    wanted = [
        *project["project"]["dependencies"],
        *project["build-system"]["requires"],  # nhi-invoke is built without isolation
    ]
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in {LOCK.name}: regenerate it"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{name}=={locked[name]} is outside {requirement.specifier}: regenerate the lock"
        )


def test_the_lock_names_the_command_that_regenerates_it() -> None:
    header = LOCK.read_text().split("\n\n", 1)[0]
    assert "pip-compile --allow-unsafe --build-deps-for=wheel --generate-hashes" in header
    assert "--output-file=action/requirements.lock" in header
    assert "with Python 3.11" in header  # the oldest Python the action supports


def test_the_install_takes_hashed_wheels_from_the_lock_and_nothing_else() -> None:
    script = (ROOT / "action" / "install.sh").read_text()
    assert 'install --require-hashes --no-deps --only-binary :all: -r "$lock"' in script
    assert 'install --no-deps --no-build-isolation --no-index "$GITHUB_ACTION_PATH"' in script
    assert 'chmod -R a-w "$venv"' in script

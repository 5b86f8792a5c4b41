"""The documentation the tool writes is current, and the README leads a newcomer right: the
options page matches the option registry and every sample output is what the command prints
(`scripts/docs.py --check`), every docs page is in the README's index, and nothing tells a
reader to install a package named nhi-invoke from PyPI (the name there is not ours)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_commands import ci_files, pages

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_options_page_and_every_sample_output_are_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def test_every_sample_marker_is_a_sample_the_script_knows() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import docs  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    used = {m["name"] for page in pages() for m in docs.SAMPLE.finditer(page.read_text())}
    assert used == set(docs.SAMPLES)


def test_every_docs_page_is_in_the_readme_index() -> None:
    index = README.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", index))
    assert linked == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_every_relative_link_of_the_readme_and_the_docs_leads_somewhere() -> None:
    for page in pages():
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_nothing_says_to_install_nhi_invoke_from_pypi() -> None:
    from_pypi = re.compile(r"pip install (?:--\S+ )*['\"]?nhi-invoke(?:\[[\w,]+\])?['\"]?(?!\S* @)")
    for path in [*pages(), *ci_files(), ROOT / "action.yml"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "do not" in line:
                continue  # the README's own warning
            assert not from_pypi.search(line), f"{path.relative_to(ROOT)}:{number}: {line}"


def test_the_first_screen_installs_and_runs_the_sandbox_and_the_tests() -> None:
    first = README.split("\n---\n", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", first, re.DOTALL)
    assert len(blocks) == 2
    sandbox, tests = blocks
    assert "pip install '.[sandbox]'" in sandbox
    assert "nhi-invoke sandbox" in sandbox
    # The action's tests install nhi-invoke from the wheelhouse: the command builds it.
    assert "pip wheel -q -w .wheelhouse . setuptools" in tests
    assert tests.strip().endswith("pytest")
    assert "pip wheel -q -w .wheelhouse . setuptools" in README.split("## Development", 1)[1]


def test_the_changelog_keeps_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert headings[0] == "Unreleased"
    for heading in headings:  # each version is a comparison (or history) link
        assert re.search(rf"^\[{re.escape(heading)}\]: https://\S+$", text, re.MULTILINE)
    sections = set(re.findall(r"^### (\w+)", text, re.MULTILINE))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    unreleased = text.split("## [Unreleased]", 1)[1].split("\n## [", 1)[0]
    # Nothing was released: what is unreleased can only have been added.
    assert set(re.findall(r"^### (\w+)", unreleased, re.MULTILINE)) <= {"Added", "Security"}


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_anchor_the_readme_and_the_docs_link_to_exists() -> None:
    for page in pages():
        for target, anchor in re.findall(r"\]\(([^)#:]*)#([\w-]+)\)", page.read_text()):
            linked = (page.parent / target) if target else page
            assert anchor in _anchors(linked), f"{page.name}: {target}#{anchor}"

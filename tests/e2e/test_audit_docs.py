"""docs/audit.md runs: every example reports exactly the findings the page lists, and every
output shown is what the command prints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nhi_invoke import __version__
from nhi_invoke.audit import trust_policy
from nhi_invoke.audit.pipelines import audit
from tests.e2e.conftest import run_nhi

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parent.parent.parent
PAGE = (ROOT / "docs" / "audit.md").read_text()
EXAMPLE = re.compile(
    r"<!-- example: (?P<path>\S+) -->\n```\w+\n(?P<body>.*?)```\n\n(?P<findings>Findings:.*?)\n\n",
    re.DOTALL,
)
FINDING = re.compile(r"line (\d+) `([\w-]+)` \((\w+)\)")
EXAMPLES = {m["path"]: m for m in EXAMPLE.finditer(PAGE)}


def _console(command: str, page: str = PAGE) -> str:
    """The output a page shows after `$ COMMAND`."""
    block = page.split(f"$ {command}\n", 1)[1]
    return block.split("```", 1)[0]


def test_every_rule_has_an_example() -> None:
    kinds = {kind for m in EXAMPLES.values() for _, kind, _ in FINDING.findall(m["findings"])}
    assert kinds == {
        "long-lived-key", "job-wide-credentials", "shared-identity", "broad-id-token",
        "unparsable-file", "missing-aud", "missing-sub", "wildcard-sub", "repo-wildcard",
        "immutable-sub-unhandled", "chaining-without-tagsession", "any-principal",
    }  # fmt: skip


@pytest.mark.parametrize("path", sorted(EXAMPLES))
def test_each_example_reports_exactly_what_the_page_says(path: str, tmp_path: Path) -> None:
    example = EXAMPLES[path]
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(example["body"])
    if path.endswith(".json"):
        findings = trust_policy.lint_files((str(target),)).findings
    else:
        findings = audit(str(tmp_path)).findings
    listed = {(int(n), k, s) for n, k, s in FINDING.findall(" ".join(example["findings"].split()))}
    assert {(f.line, f.kind, f.severity) for f in findings} == listed


def test_the_json_shown_is_what_the_command_prints(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    shown = PAGE.split("<!-- json-example: .github/workflows/release.yml -->\n```json\n", 1)[1]
    target = tmp_path / ".github" / "workflows" / "release.yml"
    target.parent.mkdir(parents=True)
    target.write_text(EXAMPLES[".github/workflows/release.yml"]["body"])
    result = run_nhi(["audit", "pipelines", ".", "--json"], base_env, cwd=tmp_path)
    expected = json.loads(shown.split("```", 1)[0]) | {"version": __version__}
    assert json.loads(result.stdout) == expected


def test_the_ci_examples_output_shown_here_and_in_the_readme_is_what_the_command_prints(
    base_env: dict[str, str],
) -> None:
    result = run_nhi(["audit", "pipelines", "ci-examples"], base_env, cwd=ROOT)
    assert result.code == 0
    assert result.stdout == _console("nhi-invoke audit pipelines ci-examples")
    readme = (ROOT / "README.md").read_text()
    assert result.stdout == _console("nhi-invoke audit pipelines ci-examples", readme)


def test_the_accuracy_figures_shown_are_what_the_script_prints() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/audit_corpus.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == _console("python benchmarks/audit_corpus.py")

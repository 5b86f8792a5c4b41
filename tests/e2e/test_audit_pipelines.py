"""`nhi-invoke audit pipelines` and `audit trust-policy` as real processes: what they read,
what they print, and the exit code a merge gate sees."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nhi_invoke import __version__
from tests.e2e.conftest import run_nhi

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PIPELINES = FIXTURES / "pipelines"
POLICIES = FIXTURES / "trust_policies"
EXAMPLES = ROOT / "ci-examples"
SARIF_SCHEMA = json.loads((ROOT / "tests" / "schemas" / "sarif-2.1.0-rtm.5.json").read_text())


def test_every_ci_example_is_read_and_none_has_a_finding(base_env: dict[str, str]) -> None:
    result = run_nhi(["audit", "pipelines", str(EXAMPLES), "--json", "--fail-on", "info"], base_env)
    assert result.code == 0, result.stdout
    report = json.loads(result.stdout)
    examples = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.yml"))
    assert len(examples) == 12
    assert report["files"] == examples
    assert report["findings"] == []
    assert report["cloud_steps"] >= 10
    assert report["per_invocation_steps"] == report["cloud_steps"]


def test_the_json_report_is_one_envelope(base_env: dict[str, str]) -> None:
    result = run_nhi(
        ["audit", "pipelines", str(PIPELINES / "gh-localstack-clean"), "--json"], base_env
    )
    report = json.loads(result.stdout)
    assert list(report)[:2] == ["command", "version"]
    assert (report["command"], report["version"]) == ("audit pipelines", __version__)
    assert report["skipped"] == [
        {"file": "deploy/k8s.yaml", "reason": "a Kubernetes manifest, not a pipeline"},
        {"file": "docker-compose.yml", "reason": "a docker-compose file, not a pipeline"},
    ]


def test_verbose_lists_the_files_read_and_skipped(base_env: dict[str, str]) -> None:
    result = run_nhi(
        ["audit", "pipelines", str(PIPELINES / "gh-localstack-clean"), "--verbose"], base_env
    )
    assert result.code == 0, result.stderr
    assert "no findings in 1 pipeline file" in result.stdout
    assert "read: .github/workflows/integration.yml" in result.stdout
    assert "skipped: docker-compose.yml (a docker-compose file, not a pipeline)" in result.stdout


def test_one_finding_is_said_in_the_singular(base_env: dict[str, str]) -> None:
    result = run_nhi(["audit", "pipelines", str(PIPELINES / "gh-step-env-keys")], base_env)
    assert result.code == 1
    assert "1 finding in 1 pipeline file" in result.stdout


def test_an_empty_folder_fails_with_one_line(base_env: dict[str, str], tmp_path: Path) -> None:
    result = run_nhi(["audit", "pipelines", str(tmp_path)], base_env)
    assert result.code == 78
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no pipeline file to audit" in result.stderr


def test_a_broken_file_is_a_finding_and_the_others_are_still_audited(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    shutil.copytree(PIPELINES / "gh-broken-workflow", tmp_path / "repo")
    shutil.copytree(PIPELINES / "gl-global-variables-key", tmp_path / "repo", dirs_exist_ok=True)
    result = run_nhi(["audit", "pipelines", str(tmp_path / "repo"), "--json"], base_env)
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["files"] == [
        ".github/workflows/broken.yml",
        ".github/workflows/ok.yml",
        ".gitlab-ci.yml",
    ]
    found = {(f["file"], f["line"], f["kind"]) for f in report["findings"]}
    assert (".github/workflows/broken.yml", 8, "unparsable-file") in found
    assert (".github/workflows/ok.yml", 9, "long-lived-key") in found
    assert (".gitlab-ci.yml", 6, "job-wide-credentials") in found


@pytest.mark.parametrize("command", ["pipelines", "trust-policy"])
def test_a_bad_fail_on_fails_before_any_output(command: str, base_env: dict[str, str]) -> None:
    target = (
        PIPELINES / "gh-step-env-keys" if command == "pipelines" else POLICIES / "gh-no-sub.json"
    )
    result = run_nhi(
        ["audit", command, str(target), "--fail-on", "bogus", "--sarif", "-"], base_env
    )
    assert result.code == 78
    assert result.stdout == ""
    assert "--fail-on 'bogus' is not a severity" in result.stderr


@pytest.mark.parametrize(
    ("target", "fail_on", "expected"),
    [
        # highest finding: high
        (PIPELINES / "gh-configure-static-inputs", None, 1),
        (PIPELINES / "gh-configure-static-inputs", "critical", 0),
        # highest finding: medium
        (PIPELINES / "gh-matrix-include-roles", None, 0),
        (PIPELINES / "gh-matrix-include-roles", "high", 0),
        (PIPELINES / "gh-matrix-include-roles", "medium", 1),
        (PIPELINES / "gh-matrix-include-roles", "low", 1),
        # no finding at all
        (PIPELINES / "gh-oidc-nhi-clean", "info", 0),
        # trust policies: highest finding low, then high, then critical
        (POLICIES / "gh-names-only.json", None, 0),
        (POLICIES / "gh-names-only.json", "low", 1),
        (POLICIES / "gh-names-only.json", "medium", 0),
        (POLICIES / "gh-no-sub.json", None, 1),
        (POLICIES / "any-principal.json", "critical", 1),
        (POLICIES / "gh-pinned-immutable.json", "info", 0),
    ],
)
def test_exit_1_exactly_when_a_finding_reaches_fail_on(
    target: Path, fail_on: str | None, expected: int, base_env: dict[str, str]
) -> None:
    command = "pipelines" if target.is_dir() else "trust-policy"
    result = run_nhi(
        ["audit", command, str(target), *(["--fail-on", fail_on] if fail_on else [])], base_env
    )
    assert result.code == expected, result.stdout + result.stderr


def test_pipeline_sarif_file_is_valid_and_keeps_stdout_for_the_table(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "nhi.sarif"
    result = run_nhi(
        ["audit", "pipelines", str(PIPELINES / "gh-yaml-anchors"), "--sarif", str(out)], base_env
    )
    assert result.code == 1
    assert "2 findings in 1 pipeline file" in result.stdout
    log: dict[str, Any] = json.loads(out.read_text())
    jsonschema.validate(log, SARIF_SCHEMA)
    results = log["runs"][0]["results"]
    assert sorted(
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results
    ) == [
        ("NHI002", 14),
        ("NHI003", 16),
    ]


def test_trust_policy_json_envelope_over_several_files(base_env: dict[str, str]) -> None:
    names = ["gh-no-sub.json", "chain-missing-both.json", "chain-good.json"]
    result = run_nhi(
        ["audit", "trust-policy", *(str(POLICIES / n) for n in names), "--json"], base_env
    )
    assert result.code == 1
    report = json.loads(result.stdout)
    assert (report["command"], report["version"]) == ("audit trust-policy", __version__)
    assert report["policies"] == [str(POLICIES / n) for n in names]
    assert [
        (Path(f["file"]).name, f["line"], f["kind"], f["severity"]) for f in report["findings"]
    ] == [
        ("gh-no-sub.json", 8, "missing-sub", "high"),
        ("chain-missing-both.json", 8, "chaining-without-tagsession", "medium"),
    ]


def test_trust_policy_sarif_to_stdout(base_env: dict[str, str]) -> None:
    result = run_nhi(
        ["audit", "trust-policy", str(POLICIES / "gh-any-repo.json"), "--sarif", "-"], base_env
    )
    log = json.loads(result.stdout)
    jsonschema.validate(log, SARIF_SCHEMA)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["TP003"]


def test_trust_policy_needs_files_or_a_role(base_env: dict[str, str]) -> None:
    result = run_nhi(["audit", "trust-policy"], base_env)
    assert result.code == 2
    assert "give trust policy FILEs or --role NAME" in result.stderr


def test_trust_policy_of_a_role_is_read_through_iam(
    base_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    env = base_env | {
        "AWS_ENDPOINT_URL_IAM": sandbox["aws_endpoint"],
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    result = run_nhi(["audit", "trust-policy", "--role", "nhi-sandbox-deploy", "--json"], env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["policies"] == ["role/nhi-sandbox-deploy"]
    # The sandbox's target role trusts the entry role with the tag actions, and its GitHub
    # statement pins the repository by name only.
    assert [f["kind"] for f in report["findings"]] == ["immutable-sub-unhandled"]


def test_the_accuracy_script_prints_its_figures_and_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "audit_corpus.py")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pipelines, policies = result.stdout.splitlines()[:2]
    recall = float(pipelines.split("recall ")[1].split(",")[0])
    precision = float(pipelines.split("precision ")[1])
    exact = float(policies.split("exact-findings rate ")[1].split()[0])
    assert min(recall, precision, exact) >= 0.95


def test_json_and_sarif_on_stdout_together_is_a_usage_error(base_env: dict[str, str]) -> None:
    result = run_nhi(["audit", "pipelines", str(EXAMPLES), "--json", "--sarif", "-"], base_env)
    assert result.code == 2
    assert result.stdout == ""
    assert "--json and --sarif - both print to stdout" in result.stderr


def test_trust_policy_files_and_a_role_together_is_a_usage_error(base_env: dict[str, str]) -> None:
    result = run_nhi(
        ["audit", "trust-policy", str(POLICIES / "gh-no-sub.json"), "--role", "deploy"], base_env
    )
    assert result.code == 2
    assert "give trust policy FILEs or --role NAME" in result.stderr


@pytest.mark.parametrize(
    ("command", "target"),
    [
        ("pipelines", "no/such/folder"),
        ("trust-policy", "tests/fixtures/pipelines/expected-findings.txt"),
    ],
)
def test_a_missing_or_invalid_input_exits_78_with_one_line(
    command: str, target: str, base_env: dict[str, str]
) -> None:
    result = run_nhi(["audit", command, target], base_env, cwd=ROOT)
    assert result.code == 78
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1

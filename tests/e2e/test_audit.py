"""The audit commands as real processes: pipelines, trust policies, the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.e2e.runs import ledger_events, ledger_path, run_nhi

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).parent.parent / "fixtures"
SARIF_SCHEMA = Path(__file__).parent.parent / "schemas" / "sarif-2.1.0-rtm.5.json"

# Every finding of the corpus, per file: (line, rule, severity). Asserted exactly.
EXPECTED_PIPELINE_FINDINGS = {
    "bitbucket/bitbucket-pipelines.yml": [(17, "NHI001", "high")],
    "buildkite/.buildkite/pipeline.yml": [(9, "NHI001", "critical"), (10, "NHI001", "high")],
    "circleci/.circleci/config.yml": [(10, "NHI002", "high"), (21, "NHI001", "high")],
    "gh-action/action.yml": [(10, "NHI001", "high"), (10, "NHI002", "high")],
    "gh-env-export/.github/workflows/assume.yml": [(10, "NHI002", "high")],
    "gh-good/.github/workflows/deploy.yml": [],
    "gh-job-wide/.github/workflows/ci.yml": [
        (3, "NHI004", "medium"),
        (11, "NHI002", "high"),
        (16, "NHI002", "high"),
        (23, "NHI004", "low"),
    ],
    "gh-leaked/.github/workflows/nightly.yml": [(12, "NHI001", "critical")],
    "gh-matrix/.github/workflows/services.yml": [(9, "NHI003", "low")],
    "gh-shared/.github/workflows/environments.yml": [
        (9, "NHI002", "high"),
        (9, "NHI003", "medium"),
        (19, "NHI002", "high"),
    ],
    "gh-static-keys/.github/workflows/release.yml": [
        (13, "NHI001", "high"),
        (15, "NHI001", "high"),
        (15, "NHI002", "high"),
    ],
    "gitlab-bad/.gitlab-ci.yml": [(5, "NHI001", "high"), (17, "NHI003", "medium")],
    "gitlab-good/.gitlab-ci.yml": [],
}
EXPECTED_TRUST_FINDINGS = {
    "good-github.json": [],
    "chain-good.json": [],
    "no-conditions.json": [(5, "TP001", "high"), (5, "TP002", "critical")],
    "any-repo.json": [(5, "TP003", "critical")],
    "org-wildcard.json": [(5, "TP006", "high"), (5, "TP004", "high"), (5, "TP005", "medium")],
    "gitlab-names-only.json": [(5, "TP004", "high")],
    "chain-without-tags.json": [(6, "TP007", "medium")],
    "anyone.json": [(4, "TP008", "critical")],
}


def test_pipeline_corpus_findings_are_exactly_the_expected_ones(base_env: dict[str, str]) -> None:
    result = run_nhi(["audit", "pipelines", str(FIXTURES / "pipelines"), "--json"], base_env)
    assert result.code == 1, result.stderr  # high findings exist: the gate fails
    report = json.loads(result.stdout)
    assert sorted(report["files"]) == sorted(EXPECTED_PIPELINE_FINDINGS)
    found: dict[str, list[tuple[int, str, str]]] = {f: [] for f in report["files"]}
    for finding in report["findings"]:
        found[finding["file"]].append((finding["line"], finding["rule"], finding["severity"]))
        assert finding["fix"]
    assert found == EXPECTED_PIPELINE_FINDINGS
    assert (report["per_invocation_steps"], report["cloud_steps"]) == (7, 22)


def test_pipeline_sarif_is_valid_sarif_2_1_0(base_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "nhi.sarif"
    result = run_nhi(
        ["audit", "pipelines", str(FIXTURES / "pipelines"), "--sarif", str(out), "--json"], base_env
    )
    assert result.code == 1
    sarif: dict[str, Any] = json.loads(out.read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    results = sarif["runs"][0]["results"]
    assert len(results) == sum(len(v) for v in EXPECTED_PIPELINE_FINDINGS.values())
    rules = {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rules


@pytest.mark.parametrize(
    ("repository", "fail_on", "expected"),
    [
        ("gh-leaked", "critical", 1),
        ("gh-matrix", "medium", 0),
        ("gh-matrix", "low", 1),
        ("gh-good", "info", 0),
    ],
)
def test_the_gate_follows_fail_on(
    repository: str, fail_on: str, expected: int, base_env: dict[str, str]
) -> None:
    result = run_nhi(
        ["audit", "pipelines", str(FIXTURES / "pipelines" / repository), "--fail-on", fail_on],
        base_env,
    )
    assert result.code == expected, result.stdout
    assert "steps that use a cloud identity run under nhi-invoke" in result.stdout


def test_trust_policy_corpus_findings_are_exactly_the_expected_ones(
    base_env: dict[str, str],
) -> None:
    for name, expected in EXPECTED_TRUST_FINDINGS.items():
        result = run_nhi(
            [
                "audit",
                "trust-policy",
                str(FIXTURES / "trust_policies" / name),
                "--json",
                "--fail-on",
                "critical",
            ],
            base_env,
        )
        found = [(f["line"], f["rule"], f["severity"]) for f in json.loads(result.stdout)]
        assert found == expected, name
        assert result.code == (1 if any(s == "critical" for _, _, s in expected) else 0), name


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
    # The sandbox's target role trusts the entry role properly and pins sub by name only.
    assert [f["rule"] for f in json.loads(result.stdout)] == ["TP005"]


def test_audit_show_lists_each_invocation_with_its_exposure(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    for step in ("show-a", "show-b"):
        assert (
            run_nhi(
                [
                    "run",
                    "--step-id",
                    step,
                    "--aws-role-arn",
                    sandbox["target_role_arn"],
                    "--",
                    "true",
                ],
                github_env,
            ).code
            == 0
        )
    result = run_nhi(["audit", "show", str(ledger_path(github_env)), "--json"], github_env)
    rows = json.loads(result.stdout)
    assert [r["step_id"] for r in rows] == ["show-a", "show-b"]
    assert all(r["ended"] == "expiring" and 800 < r["exposure_seconds"] <= 900 for r in rows)
    assert rows[0]["ci_run"].endswith(f"#{sandbox['environ']['GITHUB_RUN_ID']}/1")
    only = run_nhi(
        ["audit", "show", str(ledger_path(github_env)), "--json", "--step", "show-b"], github_env
    )
    assert [r["step_id"] for r in json.loads(only.stdout)] == ["show-b"]
    table = run_nhi(["audit", "show", str(ledger_path(github_env))], github_env)
    assert "show-a" in table.stdout
    assert "expiring" in table.stdout


def test_job_summary_names_the_credentials_and_no_secret(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    env = github_env | {"GITHUB_STEP_SUMMARY": str(summary)}
    result = run_nhi(
        [
            "run",
            "--step-id",
            "summary",
            "--aws-oidc-role-arn",
            sandbox["entry_role_arn"],
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--aws-revoke",
            "--",
            "true",
        ],
        env,
    )
    assert result.code == 0, result.stderr
    text = summary.read_text()
    assert "### nhi-invoke: `summary`" in text
    assert "revoked (deny policy)" in text
    assert "assumed-role/nhi-sandbox-deploy/summary." in text
    head = ledger_events(env)[-1]
    verify = run_nhi(
        [
            "audit",
            "verify",
            str(ledger_path(env)),
            "--head",
            text.split("Ledger head `")[1].split("`")[0],
        ],
        env,
    )
    assert verify.code == 0, verify.stderr
    assert head["event"] == "invocation.finished"
    for secret in result.secrets:
        assert secret not in text


def test_audit_verify_names_the_broken_line_and_exits_1(
    github_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    env = github_env | {"NHI_LEDGER_KEY": "a-ledger-key-from-ci-secrets-0123456789"}
    assert (
        run_nhi(
            ["run", "--step-id", "v", "--aws-role-arn", sandbox["target_role_arn"], "--", "true"],
            env,
        ).code
        == 0
    )
    path = ledger_path(env)
    good = run_nhi(["audit", "verify", str(path)], env)
    assert good.code == 0, good.stderr
    assert "hash chain and HMACs" in good.stdout
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"purpose":"child"', '"purpose":"entry"')
    path.write_text("\n".join(lines) + "\n")
    bad = run_nhi(["audit", "verify", str(path)], env)
    assert bad.code == 1
    assert "line 2 has a wrong HMAC" in bad.stderr
    chain_only = run_nhi(["audit", "verify", str(path)], github_env)
    assert chain_only.code == 1
    assert "line 3 does not follow line 2" in chain_only.stderr
    assert "hash chain only" in chain_only.stderr


def test_a_keyring_key_signs_new_lines_after_key_init(
    github_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> None:
    root = str(Path(__file__).parent.parent.parent)
    env = github_env | {
        "PYTHON_KEYRING_BACKEND": "tests.keyring_file_backend.FileKeyring",
        "TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
        "PYTHONPATH": root,
    }
    init = run_nhi(["audit", "key", "init"], env)
    assert init.code == 0, init.stderr
    key_id = init.stdout.split("ledger key ")[1].split()[0]
    assert (
        run_nhi(
            ["run", "--step-id", "k", "--aws-role-arn", sandbox["target_role_arn"], "--", "true"],
            env,
        ).code
        == 0
    )
    assert {e["key_id"] for e in ledger_events(env)} == {key_id}
    verified = run_nhi(["audit", "verify", str(ledger_path(env))], env)
    assert verified.code == 0, verified.stderr
    assert f"HMACs (key {key_id})" in verified.stdout
    # Without the keyring, the same ledger still verifies by its chain, and says so.
    chain_only = run_nhi(["audit", "verify", str(ledger_path(env))], github_env)
    assert "hash chain only" in chain_only.stdout


def test_key_init_without_a_keyring_says_to_use_the_variable(base_env: dict[str, str]) -> None:
    env = base_env | {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = run_nhi(["audit", "key", "init"], env)
    assert result.code == 78
    assert "NHI_LEDGER_KEY" in result.stderr


EXAMPLES = Path(__file__).parent.parent.parent / "ci-examples"


@pytest.mark.parametrize(
    "example",
    sorted(p for p in EXAMPLES.rglob("*.yml")),
    ids=lambda p: str(p.relative_to(EXAMPLES)),
)
def test_every_example_passes_our_own_audit(example: Path, base_env: dict[str, str]) -> None:
    result = run_nhi(["audit", "pipelines", str(example), "--json", "--fail-on", "info"], base_env)
    assert result.code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["findings"] == []
    assert report["cloud_steps"] >= 1
    assert report["per_invocation_steps"] == report["cloud_steps"]

"""`audit pipelines` in parts: what it reads, how it reads matrices, keys and scripts."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from nhi_invoke.audit.pipelines import NothingToAudit, audit, github_matrix
from nhi_invoke.audit.pipelines.credentials import credential_write, key_settings, source
from nhi_invoke.audit.pipelines.model import Script, ScriptLine, Setting, Where
from nhi_invoke.audit.pipelines.yaml_tree import Map, UnreadableYaml, load_yaml

CORPUS = Path(__file__).parent.parent / "fixtures" / "pipelines"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


WORKFLOW = """
    name: ci
    on: [push]
    jobs:
      test:
        runs-on: ubuntu-latest
        steps:
          - run: make test
"""


def test_a_folder_is_searched_by_path_and_by_content(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".github/workflows/ci.yml": WORKFLOW,
            "ci/release-workflow.yaml": WORKFLOW,  # a workflow kept elsewhere: by content
            "compose/docker-compose.yml": "services:\n  db:\n    image: postgres:16\n",
            "chart/values.yaml": "replicas: 2\n",
            "chart/templates/job.yaml": "jobs: {{ .Values.jobs }}\n  steps: [\n",
            "k8s/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nsteps: []\n",
            "k8s/all.yaml": "jobs: 1\n---\njobs: 2\n",
            "node_modules/pkg/.gitlab-ci.yml": "job:\n  script: [make]\n",
            ".buildkite/pipeline.json": '{"steps": [{"command": "make"}]}',
            "README.md": "# not yaml\n",
        },
    )
    (tmp_path / "big.yml").write_text("steps:\n" + "  - command: x\n" * 200_000)
    report = audit(str(tmp_path))
    assert report.files == (
        ".buildkite/pipeline.json",
        ".github/workflows/ci.yml",
        "ci/release-workflow.yaml",
    )
    reasons = {s.file: s.reason for s in report.skipped}
    assert reasons == {
        "big.yml": "larger than 2 MiB",
        "chart/templates/job.yaml": "not valid YAML (line 2)",
        "chart/values.yaml": "not a pipeline of a supported CI",
        "compose/docker-compose.yml": "a docker-compose file, not a pipeline",
        "k8s/all.yaml": "several YAML documents: not a pipeline",
        "k8s/deploy.yaml": "a Kubernetes manifest, not a pipeline",
    }


def test_exclude_leaves_out_matching_files_and_folders(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".github/workflows/ci.yml": WORKFLOW,
            "vendor/lib/.gitlab-ci.yml": "job:\n  script: [make]\n",
            "ci/old.yml": WORKFLOW,
        },
    )
    report = audit(str(tmp_path), ("vendor", "ci/*.yml"))
    assert report.files == (".github/workflows/ci.yml",)
    assert {(s.file, s.reason) for s in report.skipped} == {
        ("vendor/", "excluded by --exclude vendor"),
        ("ci/old.yml", "excluded by --exclude ci/*.yml"),
    }


def test_a_folder_with_nothing_to_audit_is_an_error_naming_what_was_skipped(
    tmp_path: Path,
) -> None:
    _write(tmp_path, {"docker-compose.yml": "services:\n  web:\n    build: .\n"})
    with pytest.raises(NothingToAudit) as raised:
        audit(str(tmp_path))
    assert raised.value.exit_code == 78
    assert "docker-compose.yml: a docker-compose file" in raised.value.one_line()


def test_a_local_action_is_read_when_only_the_workflow_calling_it_is_given() -> None:
    workflow = CORPUS / "gh-composite-chain" / ".github" / "workflows" / "images.yml"
    report = audit(str(workflow))
    assert report.files == (
        ".github/actions/gcloud-login/action.yml",
        ".github/actions/publish-image/action.yml",
        ".github/workflows/images.yml",
    )
    assert len(report.findings) == 4


def test_a_missing_gitlab_include_is_listed_as_skipped(tmp_path: Path) -> None:
    _write(
        tmp_path, {".gitlab-ci.yml": "include:\n  - local: ci/gone.yml\njob:\n  script: [make]\n"}
    )
    report = audit(str(tmp_path))
    assert [(s.file, s.reason) for s in report.skipped] == [
        ("ci/gone.yml", "included by .gitlab-ci.yml but not found")
    ]


def test_steps_already_under_nhi_invoke_are_counted() -> None:
    report = audit(str(CORPUS / "gh-oidc-nhi-clean"))
    assert (report.per_invocation_steps, report.cloud_steps) == (2, 2)
    report = audit(str(CORPUS / "gh-configure-oidc-job-wide"))
    assert (report.per_invocation_steps, report.cloud_steps) == (0, 2)


def test_fingerprints_survive_lines_moving(tmp_path: Path) -> None:
    shutil.copytree(CORPUS / "gh-environments-vars", tmp_path / "repo")
    before = audit(str(tmp_path / "repo")).findings
    workflow = tmp_path / "repo" / ".github" / "workflows" / "release.yml"
    workflow.write_text("# a comment moves every line down\n" + workflow.read_text())
    after = audit(str(tmp_path / "repo")).findings
    assert [f.line + 1 for f in before] == [f.line for f in after]
    assert [f.fingerprint for f in before] == [f.fingerprint for f in after]
    assert len({f.fingerprint for f in after}) == len(after) == 2  # same text, two places


def test_matrix_legs_follow_include_and_exclude() -> None:
    job = load_yaml(
        "w.yml",
        textwrap.dedent(
            """
            strategy:
              matrix:
                os: [linux, windows]
                size: [small, large]
                exclude:
                  - os: windows
                    size: large
                include:
                  - os: linux
                    role: arn:aws:iam::111122223333:role/linux
                  - os: macos
                    size: small
            """
        ),
    )
    assert isinstance(job, Map)
    legs = github_matrix.legs(job)
    assert sorted((leg["os"].text, leg["size"].text) for leg in legs) == [
        ("linux", "large"),
        ("linux", "small"),
        ("macos", "small"),
        ("windows", "small"),
    ]
    with_role = [leg for leg in legs if "role" in leg]
    assert [leg["os"].text for leg in with_role] == ["linux", "linux"]
    assert {leg["role"].where.line for leg in with_role} == {11}


def test_an_expression_matrix_counts_as_several_legs() -> None:
    job = load_yaml("w.yml", "strategy:\n  matrix: ${{ fromJSON(needs.plan.outputs.legs) }}\n")
    assert isinstance(job, Map)
    assert len(github_matrix.legs(job)) > 1


def _script(*lines: str) -> Script:
    return Script(
        "\n".join(lines),
        tuple(ScriptLine(Where("w.yml", n), t) for n, t in enumerate(lines, start=1)),
        ("GITHUB_ENV",),
    )


def test_a_grouped_write_to_github_env_is_one_write_placed_on_the_secret() -> None:
    script = _script(
        "{",
        '  echo "AWS_ACCESS_KEY_ID=$ID"',
        '  echo "AWS_SECRET_ACCESS_KEY=$SECRET"',
        '  echo "AWS_SESSION_TOKEN=$TOKEN"',
        '} >> "$GITHUB_ENV"',
    )
    written = credential_write(script, ("GITHUB_ENV",))
    assert written is not None
    assert (written[0].where.line, written[1]) == (3, "AWS_SECRET_ACCESS_KEY")


def test_a_region_written_to_github_env_is_not_a_credential() -> None:
    assert (
        credential_write(_script('echo "AWS_REGION=eu-west-1" >> $GITHUB_ENV'), ("GITHUB_ENV",))
        is None
    )


def test_a_here_document_to_github_env_is_one_write() -> None:
    script = _script(
        "cat >> $GITHUB_ENV <<EOF", "AWS_ACCESS_KEY_ID=$A", "GOOGLE_OAUTH_ACCESS_TOKEN=$T", "EOF"
    )
    written = credential_write(script, ("GITHUB_ENV",))
    assert written is not None
    assert (written[0].where.line, written[1]) == (3, "GOOGLE_OAUTH_ACCESS_TOKEN")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${{ secrets.PROD_SECRET }}", "stored"),
        ("${{ vars.KEY }}", "stored"),
        ("$GITLAB_VARIABLE", "stored"),
        ("${{ inputs.key }}", "stored"),
        ("${{ steps.creds.outputs.aws-secret-access-key }}", "minted"),
        ("${{ env.AWS_SECRET_ACCESS_KEY }}", ""),
        ("test", ""),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
        ("9vR2kF7xQp4LmZ8sT1wYcB6nH3jD0aGeU5oKiVfX", "literal-key"),
        ("", ""),
    ],
)
def test_where_a_value_comes_from(value: str, expected: str) -> None:
    assert source(value) == expected


def test_a_key_id_and_its_secret_are_one_key_reported_on_the_secret() -> None:
    group = Where("w.yml", 10)
    pair = (
        Setting("AWS_ACCESS_KEY_ID", "${{ secrets.ID }}", Where("w.yml", 11), "unit", group),
        Setting("AWS_SECRET_ACCESS_KEY", "${{ secrets.KEY }}", Where("w.yml", 12), "unit", group),
    )
    assert [k.setting.where.line for k in key_settings(pair)] == [12]
    alone = (pair[0],)
    assert [k.setting.where.line for k in key_settings(alone)] == [11]


def test_unreadable_yaml_names_its_line() -> None:
    with pytest.raises(UnreadableYaml) as raised:
        load_yaml("x.yml", "a:\n  - b\n c: d\n")
    assert raised.value.line == 3

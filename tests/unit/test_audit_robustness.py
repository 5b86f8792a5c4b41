"""Whatever a CI file holds, `audit pipelines` reads it or reports it; it never crashes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhi_invoke.audit.pipelines import audit
from nhi_invoke.errors import NhiError

KEYS = [
    "on", "jobs", "steps", "uses", "with", "env", "run", "permissions", "id-token", "strategy",
    "matrix", "include", "exclude", "environment", "secrets", "runs", "using", "script",
    "variables", "extends", "default", "id_tokens", "aud", "include", "local", "parallel",
    "artifacts", "reports", "dotenv", "version", "orbs", "workflows", "commands", "executors",
    "docker", "aws_auth", "context", "parameters", "pipelines", "step", "branches", "image",
    "aws", "deployment", "pipe", "plugins", "command", "commands", "group", "secrets",
    "AWS_SECRET_ACCESS_KEY", "role-to-assume", "services", "inherit", "environment",
]  # fmt: skip
SCALARS = st.sampled_from(
    [
        "write", "x", "${{ secrets.K }}", "$K", "arn:aws:iam::111122223333:role/r", "./",
        "./.github/actions/a", "aws-cli/setup", "2.1", "${{ matrix.role }}", "", "true",
        "!reference", "a@p.iam.gserviceaccount.com",
    ]
)  # fmt: skip
values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 5) | SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=25,
)
PATHS = [
    ".github/workflows/w.yml",
    ".github/actions/a/action.yml",
    ".gitlab-ci.yml",
    ".circleci/config.yml",
    ".buildkite/pipeline.yml",
    "bitbucket-pipelines.yml",
    "ci/anything.yml",
]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), values)
def test_any_structure_at_any_ci_path_is_audited_without_crashing(path: str, data: Any) -> None:
    _audited_without_crashing(path, data)


def _audited_without_crashing(path: str, data: Any) -> None:
    with tempfile.TemporaryDirectory() as directory:
        target = Path(directory) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data))  # JSON is YAML
        try:
            report = audit(directory)
        except NhiError:
            return
        assert all(f.line >= 1 and f.fix for f in report.findings)


def _optional(**fields: Any) -> Any:
    return st.fixed_dictionaries({}, optional=fields)


_github_step = _optional(uses=SCALARS, with_=values, env=values, run=values | SCALARS, id=SCALARS)
_github_job = _optional(
    steps=st.lists(
        _github_step.map(lambda s: {k.rstrip("_"): v for k, v in s.items()}), max_size=3
    ),
    strategy=_optional(matrix=values | _optional(role=st.lists(SCALARS), include=values)),
    permissions=values | st.just({"id-token": "write"}),
    env=values,
    uses=SCALARS,
    with_=values,
    secrets=values,
    environment=values,
)
_github_jobs = st.dictionaries(st.sampled_from(["a", "b"]), _github_job, max_size=2)
SHAPED = {
    ".github/workflows/w.yml": st.fixed_dictionaries(
        {"on": values, "jobs": _github_jobs},
        optional={"env": values, "permissions": values},
    ),
    ".gitlab-ci.yml": st.dictionaries(
        st.sampled_from(["a", ".t", "default", "variables", "include", "b"]),
        _optional(script=values, extends=values, variables=values, parallel=values,
                  artifacts=values, id_tokens=values, inherit=values, environment=values),
        max_size=4,
    ),
    ".circleci/config.yml": st.fixed_dictionaries(
        {"version": st.just("2.1"), "jobs": st.dictionaries(st.sampled_from(["a", "b"]), _optional(
            steps=st.lists(SCALARS | _optional(run=values) | st.dictionaries(
                st.sampled_from(["aws-cli/setup", "when", "c"]), values, max_size=1)),
            environment=values, docker=values, executor=values), max_size=2)},
        optional={"workflows": values, "orbs": values, "commands": values, "executors": values},
    ),
    ".buildkite/pipeline.yml": st.fixed_dictionaries({"steps": st.lists(_optional(
        command=values, plugins=values, env=values, secrets=values, matrix=values,
        parallelism=values, group=SCALARS, steps=values, key=SCALARS), max_size=3)},
        optional={"env": values}),
    "bitbucket-pipelines.yml": st.fixed_dictionaries({"pipelines": _optional(
        default=st.lists(_optional(step=_optional(script=values, image=values, deployment=values),
                                   parallel=values, stage=values), max_size=3),
        branches=values)}, optional={"definitions": values, "image": values}),
}  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SHAPED)).flatmap(lambda p: st.tuples(st.just(p), SHAPED[p])))
def test_any_ci_shaped_file_is_audited_without_crashing(shaped: tuple[str, Any]) -> None:
    _audited_without_crashing(*shaped)

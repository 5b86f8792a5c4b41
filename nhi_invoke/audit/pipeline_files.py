"""Pipeline files of every supported CI, read into one model: jobs made of steps.

Each step keeps where it is (file, line) and what a rule needs: the action or orb it uses
with its inputs, its environment, and its script text. YAML is read node by node so that
every finding can point at its line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from nhi_invoke.errors import ConfigError

MAX_FILE_BYTES = 2 * 1024 * 1024
GITLAB_KEYWORDS = frozenset({
    "stages", "variables", "include", "default", "workflow", "image", "services",
    "before_script", "after_script", "cache", "pages", "spec",
})  # fmt: skip
SKIPPED_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})


class Mapping_(dict[str, Any]):
    """A YAML mapping that remembers the line of itself and of each key."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class Sequence_(list[Any]):
    """A YAML sequence that remembers the line of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


@dataclass(frozen=True)
class Step:
    ci: str
    file: str
    line: int
    job: str
    name: str
    uses: str = ""  # action, orb command, plugin or pipe
    inputs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    env_lines: dict[str, int] = field(default_factory=dict)
    script: str = ""
    script_line: int = 0


@dataclass(frozen=True)
class Job:
    ci: str
    file: str
    line: int
    name: str
    steps: tuple[Step, ...]
    id_token_line: int | None = None  # GitHub: where id-token: write is granted to the job


@dataclass(frozen=True)
class PipelineFile:
    path: str
    ci: str
    jobs: tuple[Job, ...]
    text: str
    workflow_id_token_line: int | None = None


def _scalar(node: Any) -> Any:
    tag = node.tag or ""
    if tag.endswith(":bool"):
        return node.value.lower() in ("true", "yes", "on")
    if tag.endswith(":int"):
        try:
            return int(node.value)
        except ValueError:
            return node.value
    if tag.endswith(":null"):
        return None
    return node.value


def _to_python(node: Any, depth: int = 0) -> Any:
    import yaml  # noqa: PLC0415

    if depth > 100:
        raise ConfigError("a pipeline file nests deeper than 100 levels", "check the file")
    if isinstance(node, yaml.MappingNode):
        mapping = Mapping_(node.start_mark.line + 1)
        for key_node, value_node in node.value:
            value = _to_python(value_node, depth + 1)
            # Keys keep their text: YAML 1.1 would read GitHub's `on:` as the boolean true.
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key == "<<":  # YAML merge keys (GitLab templates use them)
                for merged in value if isinstance(value, list) else [value]:
                    if isinstance(merged, dict):
                        for k, v in merged.items():
                            mapping.setdefault(k, v)
                continue
            mapping[key] = value
            mapping.key_lines[key] = key_node.start_mark.line + 1
        return mapping
    if isinstance(node, yaml.SequenceNode):
        sequence = Sequence_(node.start_mark.line + 1)
        for item in node.value:
            sequence.append(_to_python(item, depth + 1))
            sequence.item_lines.append(item.start_mark.line + 1)
        return sequence
    return _scalar(node)


def load_yaml(path: str, text: str) -> Any:
    import yaml  # noqa: PLC0415 - only the pipeline audit reads YAML

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path} is not valid YAML: {str(exc).splitlines()[0]}",
            "fix the file, or exclude it from the path audited",
        ) from exc
    return None if node is None else _to_python(node)


def _env(mapping: Any) -> tuple[dict[str, str], dict[str, int]]:
    if not isinstance(mapping, Mapping_):
        return {}, {}
    env = {
        k: ("" if v is None else str(v))
        for k, v in mapping.items()
        if not isinstance(v, dict | list)
    }
    return env, {k: mapping.line_of(k) for k in env}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(_text(v) for v in value.values())
    return "" if value is None else str(value)


def _merged(
    outer: tuple[dict[str, str], dict[str, int]], inner: tuple[dict[str, str], dict[str, int]]
) -> tuple[dict[str, str], dict[str, int]]:
    return {**outer[0], **inner[0]}, {**outer[1], **inner[1]}


def _id_token_write(permissions: Any) -> bool:
    if permissions == "write-all":
        return True
    return isinstance(permissions, dict) and permissions.get("id-token") == "write"


def _github_steps(
    path: str, job_name: str, steps: Any, env: tuple[dict[str, str], dict[str, int]]
) -> Iterator[Step]:
    if not isinstance(steps, Sequence_):
        return
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping_):
            continue
        step_env = _merged(env, _env(step.get("env")))
        yield Step(
            ci="github",
            file=path,
            line=steps.item_lines[index],
            job=job_name,
            name=str(step.get("name") or step.get("id") or step.get("uses") or f"step {index + 1}"),
            uses=str(step.get("uses") or ""),
            inputs=dict(step.get("with") or {}) if isinstance(step.get("with"), dict) else {},
            env=step_env[0],
            env_lines=step_env[1],
            script=_text(step.get("run")),
            script_line=step.line_of("run"),
        )


def _github(path: str, data: Mapping_, text: str) -> PipelineFile:
    if "runs" in data and isinstance(data["runs"], dict):  # a composite action
        action_steps = tuple(_github_steps(path, "action", data["runs"].get("steps"), ({}, {})))
        return PipelineFile(
            path, "github", (Job("github", path, data.line, "action", action_steps),), text
        )
    workflow_env = _env(data.get("env"))
    permissions = data.get("permissions")
    workflow_line = data.line_of("permissions") if _id_token_write(permissions) else None
    jobs = []
    for name, job in (data.get("jobs") or {}).items():
        if not isinstance(job, Mapping_):
            continue
        job_env = _merged(workflow_env, _env(job.get("env")))
        steps: list[Step] = list(_github_steps(path, name, job.get("steps"), job_env))
        if job.get("uses"):  # a reusable workflow call
            steps.append(
                Step(
                    "github",
                    path,
                    job.line_of("uses"),
                    name,
                    name,
                    uses=str(job["uses"]),
                    inputs=dict(job.get("with") or {}),
                    env=job_env[0],
                    env_lines=job_env[1],
                )
            )
        grant = job.line_of("permissions") if _id_token_write(job.get("permissions")) else None
        jobs.append(Job("github", path, data["jobs"].line_of(name), name, tuple(steps), grant))
    return PipelineFile(path, "github", tuple(jobs), text, workflow_line)


def _gitlab(path: str, data: Mapping_, text: str) -> PipelineFile:
    global_env = _env(data.get("variables"))
    jobs = []
    for name, job in data.items():
        if name in GITLAB_KEYWORDS or name.startswith(".") or not isinstance(job, Mapping_):
            continue
        env = _merged(global_env, _env(job.get("variables")))
        script_key = next(
            (k for k in ("before_script", "script", "after_script") if k in job), "script"
        )
        script = "\n".join(_text(job.get(k)) for k in ("before_script", "script", "after_script"))
        step = Step(
            "gitlab",
            path,
            data.line_of(name),
            name,
            name,
            env=env[0],
            env_lines=env[1],
            script=script,
            script_line=job.line_of(script_key),
        )
        jobs.append(
            Job(
                "gitlab",
                path,
                data.line_of(name),
                name,
                (step,),
            )
        )
    return PipelineFile(path, "gitlab", tuple(jobs), text)


def _circleci(path: str, data: Mapping_, text: str) -> PipelineFile:
    jobs = []
    for name, job in (data.get("jobs") or {}).items():
        if not isinstance(job, Mapping_):
            continue
        job_env = _env(job.get("environment"))
        steps = []
        raw_steps = job.get("steps")
        if not isinstance(raw_steps, Sequence_):
            raw_steps = Sequence_(job.line)
        for index, raw in enumerate(raw_steps):
            line = raw_steps.item_lines[index]
            if not isinstance(raw, Mapping_):
                continue
            for command, params in raw.items():
                if command == "run":
                    run = params if isinstance(params, Mapping_) else None
                    env = _merged(job_env, _env(run.get("environment") if run else None))
                    steps.append(
                        Step(
                            "circleci",
                            path,
                            line,
                            name,
                            str(run.get("name", "run")) if run else "run",
                            env=env[0],
                            env_lines=env[1],
                            script=_text(run.get("command") if run else params),
                            script_line=line,
                        )
                    )
                else:  # an orb command, e.g. aws-cli/setup
                    steps.append(
                        Step(
                            "circleci",
                            path,
                            line,
                            name,
                            command,
                            uses=command,
                            inputs=dict(params) if isinstance(params, dict) else {},
                            env=job_env[0],
                            env_lines=job_env[1],
                        )
                    )
        jobs.append(Job("circleci", path, data["jobs"].line_of(name), name, tuple(steps)))
    return PipelineFile(path, "circleci", tuple(jobs), text)


def _buildkite(path: str, data: Any, text: str) -> PipelineFile:
    pipeline_env = _env(data.get("env")) if isinstance(data, Mapping_) else ({}, {})
    raw_steps = data.get("steps") if isinstance(data, Mapping_) else data
    if not isinstance(raw_steps, Sequence_):
        raw_steps = Sequence_(1)
    jobs = []
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, Mapping_):
            continue
        line = raw_steps.item_lines[index]
        name = str(raw.get("key") or raw.get("label") or f"step {index + 1}")
        env = _merged(pipeline_env, _env(raw.get("env")))
        command_key = "commands" if "commands" in raw else "command"
        plugins = raw.get("plugins")
        if not isinstance(plugins, list):
            plugins = []
        uses = " ".join(str(k) for p in plugins if isinstance(p, dict) for k in p)
        inputs = {k: v for p in plugins if isinstance(p, dict) for k, v in p.items()}
        step = Step(
            "buildkite",
            path,
            line,
            name,
            name,
            uses=uses,
            inputs=inputs,
            env=env[0],
            env_lines=env[1],
            script=_text(raw.get(command_key)),
            script_line=raw.line_of(command_key),
        )
        jobs.append(Job("buildkite", path, line, name, (step,)))
    return PipelineFile(path, "buildkite", tuple(jobs), text)


def _bitbucket_steps(value: Any) -> Iterator[tuple[Mapping_, int]]:
    """Every `step:` in a pipeline's list, through `parallel:` blocks."""
    if not isinstance(value, Sequence_):
        return
    for index, item in enumerate(value):
        if not isinstance(item, Mapping_):
            continue
        if isinstance(item.get("step"), Mapping_):
            yield item["step"], value.item_lines[index]
        parallel = item.get("parallel")
        if isinstance(parallel, Mapping_):
            parallel = parallel.get("steps")
        yield from _bitbucket_steps(parallel)


def _bitbucket(path: str, data: Mapping_, text: str) -> PipelineFile:
    pipelines = data.get("pipelines") or {}
    lists: list[tuple[str, Any]] = []
    for kind, value in pipelines.items():
        if isinstance(value, Sequence_):
            lists.append((kind, value))
        elif isinstance(value, Mapping_):
            lists += [(f"{kind}:{name}", v) for name, v in value.items()]
    jobs = []
    for pipeline, items in lists:
        for raw, line in _bitbucket_steps(items):
            name = f"{pipeline}/{raw.get('name', 'step')}"
            script = raw.get("script")
            pipes = [
                p
                for p in (script if isinstance(script, list) else [])
                if isinstance(p, dict) and "pipe" in p
            ]
            inputs = {k: v for p in pipes for k, v in (p.get("variables") or {}).items()}
            lines = {
                k: p["variables"].line_of(k)
                for p in pipes
                if isinstance(p.get("variables"), Mapping_)
                for k in p["variables"]
            }
            step = Step(
                "bitbucket",
                path,
                line,
                name,
                name,
                uses=" ".join(str(p["pipe"]) for p in pipes),
                inputs=inputs,
                env_lines=lines,
                script=_text(script),
                script_line=raw.line_of("script"),
            )
            jobs.append(
                Job(
                    "bitbucket",
                    path,
                    line,
                    name,
                    (step,),
                )
            )
    return PipelineFile(path, "bitbucket", tuple(jobs), text)


def kind_of(path: str) -> str | None:
    """Which CI a file belongs to, from where it lives."""
    parts = path.replace(os.sep, "/").split("/")
    name = parts[-1]
    if not name.endswith((".yml", ".yaml")):
        return None
    if len(parts) >= 3 and parts[-3:-1] == [".github", "workflows"]:
        return "github"
    if name in ("action.yml", "action.yaml"):
        return "github"
    if name in (".gitlab-ci.yml", ".gitlab-ci.yaml"):
        return "gitlab"
    if len(parts) >= 2 and parts[-2] == ".circleci" and name.startswith("config."):
        return "circleci"
    if (len(parts) >= 2 and parts[-2] == ".buildkite") or name in (
        "buildkite.yml",
        "buildkite.yaml",
    ):
        return "buildkite"
    if name in ("bitbucket-pipelines.yml", "bitbucket-pipelines.yaml"):
        return "bitbucket"
    return None


PARSERS = {
    "github": _github,
    "gitlab": _gitlab,
    "circleci": _circleci,
    "buildkite": _buildkite,
    "bitbucket": _bitbucket,
}


def discover(root: str) -> list[str]:
    """Pipeline files under `root` (or `root` itself), in a stable order."""
    if os.path.isfile(root):
        return [root]
    if not os.path.isdir(root):
        raise ConfigError(f"{root} does not exist", "pass a repository checkout or a file")
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        found += [
            os.path.join(directory, f) for f in sorted(files) if kind_of(os.path.join(directory, f))
        ]
    return found


def _sniff(data: Any) -> str | None:
    """Which CI a file named explicitly belongs to, from its top-level keys."""
    if isinstance(data, Sequence_):
        return "buildkite"
    if not isinstance(data, Mapping_):
        return None
    if "pipelines" in data:
        return "bitbucket"
    if "workflows" in data and "jobs" in data and "version" in data:
        return "circleci"
    if "runs" in data or ("jobs" in data and "on" in data):
        return "github"
    if "steps" in data:
        return "buildkite"
    if "stages" in data or any(isinstance(v, Mapping_) and "script" in v for v in data.values()):
        return "gitlab"
    return None


def parse(path: str, display: str) -> PipelineFile | None:
    """One file, or None when it is not a pipeline file of a supported CI."""
    kind = kind_of(path)
    if kind is None and not path.endswith((".yml", ".yaml")):
        return None
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read(MAX_FILE_BYTES)
    data = load_yaml(display, text)
    kind = kind or _sniff(data)
    if kind is None:
        return None
    if kind == "buildkite" and isinstance(data, Sequence_ | Mapping_):
        return _buildkite(display, data, text)
    if not isinstance(data, Mapping_):
        return PipelineFile(display, kind, (), text)
    return PARSERS[kind](display, data, text)

"""Buildkite (`.buildkite/pipeline.yml`, `buildkite.yml`): command steps and their plugins.

A command step is one job (`parallelism:` and `matrix:` multiply it). The pipeline's top-level
`env` reaches every step; a step's `env`, `secrets` and plugin settings reach that step only.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

from nhi_invoke.audit.pipelines import identities
from nhi_invoke.audit.pipelines.model import (
    Document,
    IdentityUse,
    Job,
    Pipeline,
    Reading,
    Setting,
    Step,
    Where,
)
from nhi_invoke.audit.pipelines.nodes import Sources, mapping, scripts_of, sequence, settings
from nhi_invoke.audit.pipelines.yaml_tree import Map, Seq

CI = "buildkite"
STEP_KEYS = frozenset(
    {
        "command",
        "commands",
        "plugins",
        "label",
        "key",
        "wait",
        "block",
        "input",
        "trigger",
        "group",
        "agents",
        "depends_on",
        "artifact_paths",
        "parallelism",
        "soft_fail",
        "retry",
    }
)
FOREIGN_KEYS = frozenset({"task", "script", "bash", "pwsh", "image", "hosts", "name", "run"})
NHI_SCRIPT = re.compile(r"\bnhi-invoke\s+run\b")
CLOUD_SCRIPT = re.compile(r"\b(aws|gcloud|gsutil|az|terraform)\s|nhi-invoke\s+run")
# Plugins whose `env:` maps a variable to the name of a secret they fetch.
SECRET_FETCHING = re.compile(r"aws-sm|secrets|vault")
CLOUD_PLUGINS = re.compile(r"aws|gcp|google|azure|ecr")


def _steps_of(data: Any) -> Seq | None:
    document = mapping(data)
    return sequence(document.get("steps")) if document is not None else sequence(data)


def looks_like(data: Any) -> bool:
    """A `steps:` list (or a bare list) of Buildkite steps, not Azure Pipelines or Ansible."""
    document = mapping(data)
    if document is not None and (
        {"jobs", "pipelines", "on", "kind", "trigger", "pool"} & set(document)
    ):
        return False
    items = _steps_of(data)
    if not items:
        return False
    shaped = [s for s in items if s == "wait" or (isinstance(s, Map) and STEP_KEYS & set(s))]
    foreign = [
        s for s in items if isinstance(s, Map) and FOREIGN_KEYS & set(s) and not STEP_KEYS & set(s)
    ]
    return bool(shaped) and not foreign


def plugin_name(name: str) -> str:
    """`github.com/org/aws-sm-buildkite-plugin#v1` -> `aws-sm`."""
    base = name.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    return base.removesuffix("-buildkite-plugin")


def _plugins(step: Map) -> Iterator[tuple[str, Map | None]]:
    raw: Any = step.get("plugins")
    items = list(raw.items()) if isinstance(raw, Map) else []
    for item in raw if isinstance(raw, Seq) else []:
        if isinstance(item, str):
            items.append((item, None))
        elif isinstance(item, Map):
            items += list(item.items())
    for name, config in items:
        yield plugin_name(str(name)), mapping(config)


def _plugin_settings(name: str, config: Map) -> tuple[Setting, ...]:
    found = settings(config, "unit", name)
    if SECRET_FETCHING.search(name):
        for key in ("env", "secrets"):
            for s in settings(config.get(key), "unit", name):
                # The value names a stored secret: what the variable receives is long-lived.
                found += (
                    Setting(s.name, f"${{{s.value}}}", s.where, s.reach, s.group, s.input_of),
                )
    return found


def _secrets(step: Map) -> tuple[Setting, ...]:
    raw: Any = step.get("secrets")
    if isinstance(raw, Map):
        return tuple(
            Setting(s.name, f"${{{s.value}}}", s.where, s.reach, s.group, "secrets")
            for s in settings(raw, "unit")
        )
    if isinstance(raw, Seq):
        group = Where(raw.span.file, raw.span.line)
        return tuple(
            Setting(str(n), f"${{{n}}}", Where(span.file, span.line), "unit", group, "secrets")
            for n, span in zip(raw, raw.spans, strict=False)
            if isinstance(n, str)
        )
    return ()


def _legs(step: Map) -> int:
    legs = 1
    parallelism: Any = step.get("parallelism")
    if isinstance(parallelism, str) and parallelism.isdigit():
        legs = max(1, int(parallelism))
    matrix: Any = step.get("matrix")
    setup = mapping(matrix.get("setup")) if isinstance(matrix, Map) else None
    if isinstance(matrix, Seq):
        legs *= max(1, len(matrix))
    elif setup is not None:
        legs *= max(
            1,
            len(
                list(
                    itertools.product(*[v if isinstance(v, list) else [v] for v in setup.values()])
                )
            ),
        )
    return legs


def _command_steps(items: Any) -> Iterator[Map]:
    for item in sequence(items) or []:
        if isinstance(item, Map):
            if "group" in item and "steps" in item:
                yield from _command_steps(item.get("steps"))
            elif "command" in item or "commands" in item or "plugins" in item:
                yield item


def read(
    documents: list[Document], sources: Sources, load: Callable[[str], Document | None]
) -> Reading:
    reading = Reading()
    for document in documents:
        sources.add(document.file, document.text)
        top = mapping(document.data)
        pipeline_env = settings(top.get("env"), "job-wide") if top is not None else ()
        jobs, uses = [], []
        for index, raw in enumerate(_command_steps(_steps_of(document.data))):
            at = Where(raw.span.file, raw.span.line)
            name = str(raw.get("key") or raw.get("label") or f"step {index + 1}")
            plugins = list(_plugins(raw))
            given: tuple[Setting, ...] = ()
            for plugin, config in plugins:
                given += _plugin_settings(plugin, config) if config is not None else ()
            given += settings(raw.get("env"), "unit") + _secrets(raw)
            scripts = scripts_of(raw, ("command", "commands"), sources)
            body = "\n".join(s.text for s in scripts)
            step = Step(
                name=name,
                where=at,
                uses=" ".join(p for p, _ in plugins),
                settings=given,
                scripts=scripts,
                runs_nhi_invoke=bool(NHI_SCRIPT.search(body)),
                cloud=bool(
                    CLOUD_SCRIPT.search(body) or any(CLOUD_PLUGINS.search(p) for p, _ in plugins)
                ),
            )
            jobs.append(Job(name, at, (step,), pipeline_env))
            units = frozenset(f"{document.file}#{index}#{leg}" for leg in range(_legs(raw)))
            uses += _identities(step, units)
        uses += _pipeline_identities(pipeline_env, jobs, len(jobs))
        reading.pipelines.append(Pipeline(document.file, CI, tuple(jobs), (), tuple(uses)))
    return reading


def _identities(step: Step, units: frozenset[str]) -> list[IdentityUse]:
    found = []
    for setting in step.settings:
        if identities.is_entry(setting.name):
            continue
        found += [
            IdentityUse(n.text, identities.key(n, ""), setting.where, units)
            for n in identities.literals(setting.value)
        ]
        if identities.is_position(setting.name):
            named = identities.in_position(setting.value)
            if named is not None and named.kind == "stored":
                found.append(
                    IdentityUse(named.text, identities.key(named, ""), setting.where, units)
                )
    for script in step.scripts:
        for line in script.lines:
            found += [
                IdentityUse(n.text, identities.key(n, ""), line.where, units)
                for n in identities.in_script(line.text, True)
                if n.kind in ("literal", "stored")
            ]
    return found


def _pipeline_identities(
    given: tuple[Setting, ...], jobs: list[Job], count: int
) -> list[IdentityUse]:
    units = frozenset(f"job{i}" for i in range(count))
    return [
        IdentityUse(n.text, identities.key(n, ""), s.where, units)
        for s in given
        if not identities.is_entry(s.name)
        for n in identities.literals(s.value)
    ]

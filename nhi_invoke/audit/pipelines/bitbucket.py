"""Bitbucket Pipelines (`bitbucket-pipelines.yml`): steps, pipes, images, deployments.

Each step of each pipeline is a unit (a step defined once under `definitions:` and used by
several pipelines serves each of them). Pipe `variables` reach that pipe only; a step's
`deployment:` scopes the deployment variables its scripts read.
"""

from __future__ import annotations

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
    Script,
    ScriptLine,
    Setting,
    Step,
    Where,
)
from nhi_invoke.audit.pipelines.nodes import Sources, action_name, mapping, sequence, settings
from nhi_invoke.audit.pipelines.yaml_tree import Map, Span

CI = "bitbucket"
PIPELINE_KINDS = ("default", "branches", "tags", "bookmarks", "pull-requests", "custom")
NHI_SCRIPT = re.compile(r"\bnhi-invoke\s+run\b")
CLOUD_SCRIPT = re.compile(r"\b(aws|gcloud|gsutil|az|terraform)\s|nhi-invoke\s+run")
IMAGE_AWS = "bitbucket:image.aws"


def looks_like(data: Any) -> bool:
    document = mapping(data)
    pipelines = mapping(document.get("pipelines")) if document is not None else None
    return pipelines is not None and bool(set(PIPELINE_KINDS) & set(pipelines))


def _lists(pipelines: Map) -> Iterator[tuple[str, Any]]:
    for kind, value in pipelines.items():
        if isinstance(value, list):
            yield kind, value
        elif isinstance(value, Map):
            for name, items in value.items():
                yield f"{kind}:{name}", items


def _steps(items: Any) -> Iterator[Map]:
    """Every `step:` of a pipeline, through `parallel:` and `stage:` blocks."""
    for item in sequence(items) or []:
        if not isinstance(item, Map):
            continue
        step = mapping(item.get("step"))
        if step is not None:
            yield step
        for block in ("parallel", "stage"):
            inner: Any = item.get(block)
            if isinstance(inner, Map):
                inner = inner.get("steps")
            yield from _steps(inner)


def _script(value: Any, span: Span, sources: Sources) -> tuple[Script, list[tuple[Map, Span]]]:
    """The shell lines of a script list, and its pipes."""
    lines: list[ScriptLine] = []
    texts: list[str] = []
    pipes: list[tuple[Map, Span]] = []
    items = sequence(value)
    for item, item_span in zip(items or [value], items.spans if items else [span], strict=False):
        if isinstance(item, Map) and "pipe" in item:
            pipes.append((item, item_span))
        elif isinstance(item, str):
            texts.append(item)
            lines += [
                ScriptLine(Where(item_span.file, n), t) for n, t in sources.between(item_span)
            ]
    return Script("\n".join(texts), tuple(lines)), pipes


def _image(image: Any) -> tuple[Setting, ...]:
    body = mapping(image)
    return settings(body.get("aws"), "unit", IMAGE_AWS) if body is not None else ()


def _step(raw: Map, at: Span, name: str, top_image: Any, sources: Sources) -> Job:
    given = _image(raw.get("image") or top_image)
    scripts = []
    steps = []
    for key in ("script", "after-script"):
        if raw.get(key) is None:
            continue
        body, pipes = _script(raw[key], raw.span_of(key), sources)
        scripts.append(body)
        for pipe, pipe_span in pipes:
            uses = action_name(str(pipe["pipe"]).split(":", 1)[0])
            steps.append(
                Step(
                    name=uses,
                    where=Where(pipe_span.file, pipe_span.line),
                    uses=uses,
                    uses_where=Where(pipe_span.file, pipe_span.line),
                    settings=settings(pipe.get("variables"), "unit", uses),
                    cloud=bool(re.search(r"aws|gcp|google|azure", uses)),
                )
            )
    text = "\n".join(s.text for s in scripts)
    where = Where(at.file, at.line)
    main = Step(
        name=name,
        where=where,
        settings=given,
        scripts=tuple(scripts),
        runs_nhi_invoke=bool(NHI_SCRIPT.search(text)),
        cloud=bool(CLOUD_SCRIPT.search(text) or str(raw.get("oidc")).lower() == "true"),
    )
    return Job(name, where, (main, *steps))


def _identities(job: Job, scope: str, unit: str) -> list[IdentityUse]:
    units = frozenset({unit})
    found = []
    for step in job.steps:
        for setting in step.settings:
            if identities.is_entry(setting.name):
                continue
            found += [
                IdentityUse(n.text, identities.key(n, ""), setting.where, units)
                for n in identities.literals(setting.value)
            ]
            named = (
                identities.in_position(setting.value)
                if identities.is_position(setting.name) or setting.name == "oidc-role"
                else None
            )
            if named is not None and named.kind == "stored":
                found.append(
                    IdentityUse(named.text, identities.key(named, scope), setting.where, units)
                )
        for script in step.scripts:
            for line in script.lines:
                found += [
                    IdentityUse(n.text, identities.key(n, scope), line.where, units)
                    for n in identities.in_script(line.text, True)
                    if n.kind in ("literal", "stored")
                ]
    return found


def read(
    documents: list[Document], sources: Sources, load: Callable[[str], Document | None]
) -> Reading:
    reading = Reading()
    for document in documents:
        sources.add(document.file, document.text)
        config = mapping(document.data)
        pipelines = mapping(config.get("pipelines")) if config is not None else None
        jobs: list[Job] = []
        uses: list[IdentityUse] = []
        built: dict[int, Job] = {}
        for pipeline, items in _lists(pipelines or Map(Span(document.file, 1, 1, 1))):
            for number, raw in enumerate(_steps(items)):
                name = f"{pipeline}/{raw.get('name') or f'step {number + 1}'}"
                job = built.get(id(raw)) or _step(
                    raw, raw.span, name, config.get("image") if config else None, sources
                )
                if id(raw) not in built:
                    built[id(raw)] = job
                    jobs.append(job)
                scope = str(raw.get("deployment") or "")
                uses += _identities(job, scope, f"{document.file}#{pipeline}#{number}")
        reading.pipelines.append(Pipeline(document.file, CI, tuple(jobs), (), tuple(uses)))
    return reading

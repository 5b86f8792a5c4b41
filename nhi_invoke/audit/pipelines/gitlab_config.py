"""GitLab CI's configuration as GitLab builds it: `include:`, `extends:`, `!reference`, `default:`.

Every value keeps the file and line it was written at, so a finding about a job built from a
template in an included file points into that file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from nhi_invoke.audit.pipelines.model import Document
from nhi_invoke.audit.pipelines.nodes import mapping
from nhi_invoke.audit.pipelines.yaml_tree import Map, Seq, Span

KEYWORDS = frozenset(
    {
        "stages",
        "variables",
        "include",
        "default",
        "workflow",
        "image",
        "services",
        "before_script",
        "after_script",
        "cache",
        "spec",
    }
)
MAX_INCLUDES = 150  # GitLab's own limit
MAX_EXTENDS = 11  # GitLab's own depth limit


def local_includes(data: Map) -> list[str]:
    """The repository paths a configuration includes (`include: local:` and bare paths)."""
    raw: Any = data.get("include")
    items = raw if isinstance(raw, list) else [raw]
    found = []
    for item in items:
        if isinstance(item, str) and not item.startswith(("http://", "https://")):
            found.append(item)
        elif isinstance(item, Map) and isinstance(item.get("local"), str):
            found.append(item["local"])
    return found


def merged(base: Map, override: Map) -> Map:
    """GitLab's deep merge: mappings merge key by key, anything else is replaced."""
    result = Map(override.span)
    for source in (base, override):
        for key, value in source.items():
            previous = result.get(key)
            if isinstance(previous, Map) and isinstance(value, Map):
                result[key] = merged(previous, value)
            else:
                result[key] = value
            result.spans[key] = source.span_of(key)
    return result


class Assembler:
    """One root configuration with what it includes, read through `load` once each."""

    def __init__(self, root: Document, load: Callable[[str], Document | None]) -> None:
        self.root = root
        self.load = load
        self.base = os.path.dirname(os.path.abspath(root.path))
        self.included: list[Document] = []
        self.missing: list[str] = []
        self._configuration: Map | None = None

    def _include(self, data: Map, depth: int) -> Map:
        combined = Map(data.span)
        for path in local_includes(data):
            if len(self.included) >= MAX_INCLUDES or depth > MAX_INCLUDES:
                break
            target = os.path.normpath(os.path.join(self.base, path.lstrip("/")))
            document = next((d for d in self.included if d.path == target), None)
            if document is None:
                document = self.load(target) if os.path.isfile(target) else None
                if document is None:
                    self.missing.append(path)
                    continue
                self.included.append(document)
            inner = mapping(document.data)
            if inner is not None:
                combined = merged(combined, self._include(inner, depth + 1))
        return merged(combined, data)

    def configuration(self) -> Map:
        if self._configuration is None:
            data = mapping(self.root.data)
            empty = Map(Span(self.root.file, 1, 1, 1))
            self._configuration = empty if data is None else self._include(data, 0)
        return self._configuration


def _extended(config: Map, job: Map, depth: int) -> Map:
    parents: Any = job.get("extends")
    names = parents if isinstance(parents, list) else [parents] if parents else []
    result = Map(job.span)
    for name in names:
        parent = config.get(str(name))
        if isinstance(parent, Map) and depth < MAX_EXTENDS:
            result = merged(result, _extended(config, parent, depth + 1))
    return merged(result, job)


def _referenced(config: Map, value: Any, depth: int = 0) -> Any:
    """`!reference [.template, script]` replaced by what it names (in scripts and lists)."""
    if isinstance(value, Seq) and value.tag == "!reference" and depth < MAX_EXTENDS:
        target: Any = config
        for part in value:
            target = target.get(str(part)) if isinstance(target, Map) else None
        return _referenced(config, target, depth + 1)
    if isinstance(value, Seq):
        flat = Seq(value.span, value.tag)
        for item, span in zip(value, value.spans, strict=False):
            resolved = _referenced(config, item, depth + 1)
            if isinstance(item, Seq) and item.tag == "!reference" and isinstance(resolved, Seq):
                flat.extend(resolved)
                flat.spans.extend(resolved.spans)
            else:
                flat.append(resolved)
                flat.spans.append(span)
        return flat
    return value


def _inherits(job: Map, what: str, key: str) -> bool:
    inherit = mapping(job.get("inherit"))
    setting: Any = inherit.get(what, True) if inherit is not None else True
    if isinstance(setting, list):
        return key in [str(s) for s in setting]
    return str(setting).lower() != "false"


def jobs(config: Map) -> dict[str, Map]:
    """Every job (not templates, not keywords), with `extends`, `default:` and `!reference`s
    applied; `variables` hold the job's own variables only (globals are read separately)."""
    default = mapping(config.get("default"))
    found = {}
    for name, raw in config.items():
        if name in KEYWORDS or name.startswith(".") or not isinstance(raw, Map):
            continue
        job = _extended(config, raw, 0)
        if default is not None:
            for key, value in default.items():
                if key not in job and _inherits(job, "default", key):
                    job[key] = value
                    job.spans[key] = default.span_of(key)
        for key in ("before_script", "script", "after_script"):
            if key in job:
                job[key] = _referenced(config, job[key])
        found[name] = job
    return found


def inherits_variable(job: Map, name: str) -> bool:
    return _inherits(job, "variables", name)

"""GitLab CI (`.gitlab-ci.yml` and the files it includes), read into the model.

A job is one unit (`parallel:` multiplies it). Global `variables` reach every job; a job's own
`variables` (its templates' included) reach that job only. `default: id_tokens` gives every
job that inherits it a token of the same audience.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from nhi_invoke.audit.pipelines import identities
from nhi_invoke.audit.pipelines.gitlab_config import (
    KEYWORDS,
    Assembler,
    inherits_variable,
    jobs,
    local_includes,
)
from nhi_invoke.audit.pipelines.model import (
    Document,
    DotenvReport,
    IdentityUse,
    Job,
    Pipeline,
    Reading,
    Skipped,
    Step,
)
from nhi_invoke.audit.pipelines.nodes import (
    Sources,
    mapping,
    scripts_of,
    settings,
    text,
    value_where,
    where,
)
from nhi_invoke.audit.pipelines.yaml_tree import Map, Seq

CI = "gitlab"
SCRIPT_KEYS = ("before_script", "script", "after_script")
NHI_SCRIPT = re.compile(r"\bnhi-invoke\s+run\b")
CLOUD_SCRIPT = re.compile(r"\b(aws|gcloud|gsutil|az|terraform)\s|nhi-invoke\s+run")


def looks_like(data: Any) -> bool:
    """Jobs with `script:` (or templates with it), `stages:`, or an `include:` of local files."""
    document = mapping(data)
    if document is None or "pipelines" in document or "jobs" in document:
        return False
    if "stages" in document or local_includes(document):
        return True
    return any(
        isinstance(value, Map) and ({"script", "trigger", "extends"} & set(value))
        for key, value in document.items()
        if key not in KEYWORDS
    )


def _legs(job: Map) -> int:
    parallel: Any = job.get("parallel")
    if isinstance(parallel, str) and parallel.isdigit():
        return max(1, int(parallel))
    matrix = mapping(parallel)
    entries = matrix.get("matrix") if matrix is not None else None
    if isinstance(entries, list):
        return max(
            1,
            sum(
                len(
                    list(
                        itertools.product(*[v if isinstance(v, list) else [v] for v in e.values()])
                    )
                )
                for e in entries
                if isinstance(e, Map)
            ),
        )
    return 1


def _environment(job: Map) -> str:
    environment: Any = job.get("environment")
    if isinstance(environment, Map):
        environment = environment.get("name")
    return str(environment or "")


def _dotenv(job: Map) -> DotenvReport | None:
    artifacts = mapping(job.get("artifacts"))
    reports = mapping(artifacts.get("reports")) if artifacts is not None else None
    if reports is None or reports.get("dotenv") is None:
        return None
    files = reports["dotenv"]
    names = tuple(str(f) for f in (files if isinstance(files, list) else [files]))
    return DotenvReport(names, where(reports.span_of("dotenv")))


class _Builder:
    def __init__(self, root: Document, config: Map, sources: Sources) -> None:
        self.root = root
        self.config = config
        self.sources = sources
        self.globals = settings(config.get("variables"), "job-wide")
        self.jobs = jobs(config)
        self.units = {
            name: {f"{root.file}#{name}#{leg}" for leg in range(_legs(job))}
            for name, job in self.jobs.items()
        }

    def job(self, name: str, job: Map) -> Job:
        own = settings(job.get("variables"), "unit")
        inherited = tuple(s for s in self.globals if inherits_variable(job, s.name))
        scripts = scripts_of(job, SCRIPT_KEYS, self.sources)
        body = "\n".join(s.text for s in scripts)
        step = Step(
            name=name,
            where=where(self.config.span_of(name)),
            scripts=scripts,
            runs_nhi_invoke=bool(NHI_SCRIPT.search(body)),
            cloud=bool(CLOUD_SCRIPT.search(body) or "id_tokens" in job),
        )
        return Job(name, step.where, (step,), inherited + own, _dotenv(job))

    def identities(self, name: str, job: Map, built: Job) -> list[IdentityUse]:
        units = frozenset(self.units[name])
        defined = {s.name for s in built.settings}
        found = []
        for setting in built.settings:
            if setting.reach == "unit" and not identities.is_entry(setting.name):
                found += [
                    IdentityUse(n.text, identities.key(n, ""), setting.where, units)
                    for n in identities.literals(setting.value)
                ]
        scope = _environment(job)
        for script in built.steps[0].scripts:
            for line in script.lines:
                for named in identities.in_script(line.text, True):
                    variable = named.text.strip("${}")
                    if named.kind == "stored" and variable in defined:
                        continue  # the variable's own line is the use
                    if named.kind in ("literal", "stored"):
                        found.append(
                            IdentityUse(named.text, identities.key(named, scope), line.where, units)
                        )
        found += self._matrix_identities(name, job)
        return found

    def _matrix_identities(self, name: str, job: Map) -> list[IdentityUse]:
        parallel = mapping(job.get("parallel"))
        entries = parallel.get("matrix") if parallel is not None else None
        found = []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Map):
                continue
            sizes = {k: len(v) if isinstance(v, list) else 1 for k, v in entry.items()}
            for key, values in entry.items():
                legs = 1
                for other, size in sizes.items():
                    legs *= size if other != key else 1
                items = (
                    list(zip(values, values.spans, strict=False))
                    if isinstance(values, Seq)
                    else [(values, entry.span_of(key))]
                )
                for value, span in items:
                    units = frozenset(
                        f"{self.root.file}#{name}#{key}={value}#{i}" for i in range(legs)
                    )
                    found += [
                        IdentityUse(n.text, identities.key(n, ""), value_where(span), units)
                        for n in identities.literals(str(value))
                    ]
        return found

    def global_identities(self) -> list[IdentityUse]:
        found = []
        for setting in self.globals:
            reads = re.compile(rf"\$\{{?{re.escape(setting.name)}\b")
            for named in identities.literals(setting.value):
                served = [
                    u for n, j in self.jobs.items() if reads.search(text(j)) for u in self.units[n]
                ]
                every = served or [u for units in self.units.values() for u in units]
                found.append(
                    IdentityUse(
                        named.text, identities.key(named, ""), setting.where, frozenset(every)
                    )
                )
        return found

    def default_audiences(self) -> list[IdentityUse]:
        """`default: id_tokens`: every job that inherits it gets a token of that audience."""
        default = mapping(self.config.get("default"))
        tokens = mapping(default.get("id_tokens")) if default is not None else None
        if tokens is None:
            return []
        served = frozenset(
            u
            for name, job in self.jobs.items()
            if job.get("id_tokens") is tokens
            for u in self.units[name]
        )
        found = []
        for token in tokens.values():
            token_map = mapping(token)
            if token_map is None or "aud" not in token_map:
                continue
            audiences = token_map["aud"]
            spans = audiences.spans if isinstance(audiences, Seq) else [token_map.span_of("aud")]
            for audience, span in zip(
                audiences if isinstance(audiences, Seq) else [audiences], spans, strict=False
            ):
                found.append(
                    IdentityUse(
                        f"the default audience {audience}",
                        f"aud:{audience}",
                        value_where(span),
                        served,
                    )
                )
        return found


def read(
    documents: list[Document], sources: Sources, load: Callable[[str], Document | None]
) -> Reading:
    """Each root configuration with its includes; an included file is read with its root."""
    reading = Reading()
    assembled: list[tuple[Document, Assembler]] = []
    included: dict[str, str] = {}
    for document in documents:
        assembler = Assembler(document, load)
        assembler.configuration()
        assembled.append((document, assembler))
        for inner in assembler.included:
            included.setdefault(inner.path, document.file)
    for document, assembler in assembled:
        if document.path in included:
            continue  # read with the configuration that includes it
        sources.add(document.file, document.text)
        for inner in assembler.included:
            sources.add(inner.file, inner.text)
            if inner.file not in reading.extra_files and inner not in documents:
                reading.extra_files.append(inner.file)
        reading.skipped += [
            Skipped(p, f"included by {document.file} but not found") for p in assembler.missing
        ]
        builder = _Builder(document, assembler.configuration(), sources)
        built_jobs = []
        uses: list[IdentityUse] = []
        for name, job in builder.jobs.items():
            built = builder.job(name, job)
            built_jobs.append(built)
            uses += builder.identities(name, job, built)
        uses += builder.global_identities() + builder.default_audiences()
        reading.pipelines.append(Pipeline(document.file, CI, tuple(built_jobs), (), tuple(uses)))
    return reading

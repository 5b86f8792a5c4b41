"""GitHub Actions: workflows (`.github/workflows/*.yml|yaml`) and composite actions (`action.yml`).

Workflow- and job-level `env:` reach every step of a job; a step's `env:` and `with:` reach
that step. Steps are units; a matrix multiplies them by its legs, and a local action or
reusable workflow is one more unit under each step or job that calls it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nhi_invoke.audit.pipelines import github_matrix, identities
from nhi_invoke.audit.pipelines.github_actions import (
    NHI_ACTION,
    NHI_SCRIPT,
    LocalFiles,
    TokenUse,
    action_steps,
    exports_credentials,
    inputs,
    step_uses,
    workflow_jobs,
)
from nhi_invoke.audit.pipelines.model import (
    Document,
    IdentityUse,
    Job,
    Pipeline,
    Reading,
    Setting,
    Step,
    TokenGrant,
    Where,
)
from nhi_invoke.audit.pipelines.nodes import (
    Sources,
    mapping,
    scripts_of,
    sequence,
    settings,
    text,
    where,
)
from nhi_invoke.audit.pipelines.yaml_tree import Map

CI = "github"


def looks_like(data: Any) -> bool:
    """A workflow (`on:` and `jobs:`) or an action (`runs: using:`)."""
    document = mapping(data)
    if document is None:
        return False
    runs = mapping(document.get("runs"))
    if runs is not None and "using" in runs:
        return True
    jobs = mapping(document.get("jobs"))
    if jobs is None:
        return False
    shaped = [j for j in jobs.values() if isinstance(j, Map) and {"steps", "uses"} & set(j)]
    return bool(shaped) and ("on" in document or any("runs-on" in j for j in shaped))


@dataclass(frozen=True)
class _Built:
    job: Job
    identities: list[IdentityUse]
    units: set[str]


@dataclass(frozen=True)
class _Caller:
    document: Document
    job: str | None  # None: a step of a composite action
    step: int  # -1: the job itself calls a reusable workflow
    legs: int


class _Units:
    """The units (one step of one leg of one job, under each caller) that each place serves."""

    def __init__(self) -> None:
        self.callers: dict[str, list[_Caller]] = {}
        self.busy: set[str] = set()

    def called(self, target: Document, caller: _Caller) -> None:
        self.callers.setdefault(os.path.normpath(target.path), []).append(caller)

    def prefixes(self, document: Document) -> set[str]:
        path = os.path.normpath(document.path)
        callers = self.callers.get(path, [])
        if not callers or path in self.busy:
            return {""}
        self.busy.add(path)
        try:
            found = set()
            for caller in callers:
                if caller.job is None:
                    legs = self.action_step(caller.document, caller.step)
                else:
                    legs = self.job_step(caller.document, caller.job, caller.step, caller.legs)
                found |= {f"{unit}>" for leg in legs for unit in leg}
            return found
        finally:
            self.busy.discard(path)

    def job_step(self, document: Document, job: str, step: int, legs: int) -> list[frozenset[str]]:
        """The units of one step of a job, leg by leg."""
        prefixes = self.prefixes(document)
        return [
            frozenset(f"{prefix}{document.file}#{job}#{step}#{leg}" for prefix in prefixes)
            for leg in range(legs)
        ]

    def action_step(self, document: Document, step: int) -> list[frozenset[str]]:
        """The units of one step of a composite action (one per caller)."""
        return [frozenset(f"{prefix}{document.file}#{step}" for prefix in self.prefixes(document))]


def _environment(job: Map, leg: github_matrix.Leg) -> str:
    environment = job.get("environment")
    if isinstance(environment, Map):
        environment = environment.get("name")
    return github_matrix.resolve(str(environment or ""), leg)


def _grant(parent: Map) -> Where | None:
    permissions = parent.get("permissions")
    if permissions == "write-all":
        return where(parent.span_of("permissions"))
    granted = mapping(permissions)
    if granted is not None and granted.get("id-token") == "write":
        return where(granted.span_of("id-token"))
    return None


class _Reader:
    def __init__(self, sources: Sources, files: LocalFiles) -> None:
        self.sources = sources
        self.files = files
        self.token = TokenUse(files)
        self.units = _Units()

    # -- callers first: the units of a local file depend on who calls it ---------------------

    def index_callers(self, documents: list[Document]) -> list[Document]:
        """Record every local call; returns the local files read on the way."""
        queue, seen, extra = list(documents), set(), []
        while queue:
            document = queue.pop(0)
            path = os.path.normpath(document.path)
            if path in seen:
                continue
            seen.add(path)
            called: list[tuple[str, _Caller]] = []
            for index, step in enumerate(action_steps(document)):
                called.append((str(step.get("uses") or ""), _Caller(document, None, index, 1)))
            for name, job in workflow_jobs(document).items():
                legs = len(github_matrix.legs(job))
                if job.get("uses"):
                    called.append((str(job["uses"]), _Caller(document, name, -1, legs)))
                for index, step in enumerate(sequence(job.get("steps")) or []):
                    if isinstance(step, Map):
                        called.append(
                            (str(step.get("uses") or ""), _Caller(document, name, index, legs))
                        )
            for uses, caller in called:
                target = self.files.resolve(document, uses)
                if target is None:
                    continue
                self.units.called(target, caller)
                if os.path.normpath(target.path) not in seen:
                    queue.append(target)
                    if target not in documents and target not in extra:
                        extra.append(target)
        return extra

    # -- steps ---------------------------------------------------------------------------

    def step(self, document: Document, raw: Map, index: int, item: Where, in_action: bool) -> Step:
        uses = step_uses(raw)
        given = inputs(raw)
        local = uses.startswith("./")
        exports = exports_credentials(uses, given)
        scripts = scripts_of(raw, ("run",), self.sources, ("GITHUB_ENV",))
        return Step(
            name=str(raw.get("name") or raw.get("id") or uses or f"step {index + 1}"),
            where=item,
            uses=uses,
            uses_where=where(raw.span_of("uses")) if "uses" in raw else None,
            settings=settings(raw.get("with"), "unit", uses, local)
            + settings(raw.get("env"), "unit"),
            scripts=scripts,
            exports_credentials=exports,
            exports_to_caller=exports and in_action,
            runs_nhi_invoke=uses == NHI_ACTION or any(NHI_SCRIPT.search(s.text) for s in scripts),
            cloud=self.token.cloud(document, raw),
        )

    def call(self, document: Document, name: str, job: Map) -> Step:
        uses = str(job["uses"])
        local = uses.startswith("./")
        passed = mapping(job.get("secrets"))  # `secrets: inherit` hands on nothing by name
        return Step(
            name=name,
            where=where(job.span_of("uses")),
            uses=uses,
            uses_where=where(job.span_of("uses")),
            settings=settings(job.get("with"), "unit", uses, local)
            + settings(passed, "unit", uses, local_input=True),
        )

    # -- identities ------------------------------------------------------------------------

    def _named(self, step: Step) -> list[tuple[identities.Named, Where]]:
        local = step.uses.startswith("./")
        found: list[tuple[identities.Named, Where]] = []
        for setting in step.settings:
            if identities.is_entry(setting.name):
                continue
            found += [(n, setting.where) for n in identities.literals(setting.value)]
            if identities.is_position(setting.name, local):
                named = identities.in_position(setting.value)
                if named is not None:
                    found.append((named, setting.where))
        for script in step.scripts:
            for line in script.lines:
                found += [(n, line.where) for n in identities.in_script(line.text, False)]
        return found

    def step_identities(
        self, step: Step, units: list[frozenset[str]], job: Map | None, legs: list[Any]
    ) -> list[IdentityUse]:
        """The identities a step names; `units` and `legs` go leg by leg."""
        uses = []
        every = frozenset().union(*units)
        for named, at in self._named(step):
            if named.kind == "literal":
                uses.append(IdentityUse(named.text, identities.key(named, ""), at, every))
            elif named.kind == "matrix":
                for leg, leg_units in zip(legs, units, strict=True):
                    value = leg.get(named.text)
                    for literal in identities.literals(value.text) if value else []:
                        key = identities.key(literal, "")
                        uses.append(IdentityUse(literal.text, key, value.where, leg_units))
            elif named.kind == "stored":
                for leg, leg_units in zip(legs, units, strict=True):
                    scope = _environment(job, leg) if job is not None else ""
                    if "${{" in scope:
                        scope = ",".join(sorted(leg_units))  # unknown per leg: never the same
                    key = identities.key(named, scope)
                    uses.append(IdentityUse(named.text, key, at, leg_units))
        return uses

    def job_wide_identities(
        self, given: tuple[Setting, ...], jobs: dict[str, tuple[Map, set[str]]]
    ) -> list[IdentityUse]:
        """Literal identities in workflow/job env: they serve the jobs that read them."""
        uses = []
        for setting in given:
            if identities.is_entry(setting.name):
                continue
            reads = re.compile(rf"(env\.|\$\{{?){re.escape(setting.name)}\b")
            for named in identities.literals(setting.value):
                served = [u for job, u in jobs.values() if reads.search(text(job))]
                every = set().union(*(served or [u for _, u in jobs.values()]))
                uses.append(
                    IdentityUse(
                        named.text, identities.key(named, ""), setting.where, frozenset(every)
                    )
                )
        return uses

    # -- files -----------------------------------------------------------------------------

    def action(self, document: Document) -> Pipeline:
        steps = []
        found: list[IdentityUse] = []
        for index, raw in enumerate(action_steps(document)):
            step = self.step(document, raw, index, Where(document.file, raw.span.line), True)
            steps.append(step)
            found += self.step_identities(step, self.units.action_step(document, index), None, [{}])
        data = mapping(document.data)
        at = Where(document.file, data.span.line if data is not None else 1)
        jobs = (Job(name="action", where=at, steps=tuple(steps)),) if steps else ()
        return Pipeline(document.file, CI, jobs, identities=tuple(found))

    def job(
        self, document: Document, name: str, raw: Map, at: Where, inherited: tuple[Setting, ...]
    ) -> _Built:
        legs = github_matrix.legs(raw)
        job_env = settings(raw.get("env"), "job-wide")
        if raw.get("uses"):
            steps = [(-1, self.call(document, name, raw))]
        else:
            maps = [s for s in sequence(raw.get("steps")) or [] if isinstance(s, Map)]
            steps = [
                (i, self.step(document, s, i, Where(document.file, s.span.line), False))
                for i, s in enumerate(maps)
            ]
        found: list[IdentityUse] = []
        every: set[str] = set()
        for number, step in steps:
            units = self.units.job_step(document, name, number, len(legs))
            every |= frozenset().union(*units)
            found += self.step_identities(step, units, raw, legs)
        found += self.job_wide_identities(job_env, {name: (raw, every)})
        job = Job(name, at, tuple(s for _, s in steps), inherited + job_env)
        return _Built(job, found, every)

    def workflow(self, document: Document) -> Pipeline:
        data = mapping(document.data)
        jobs_map = mapping(data.get("jobs")) if data is not None else None
        if data is None or jobs_map is None:
            return Pipeline(document.file, CI, ())
        workflow_env = settings(data.get("env"), "job-wide")
        built: dict[str, _Built] = {}
        grants: list[TokenGrant] = []
        for name, raw in workflow_jobs(document).items():
            at = where(jobs_map.span_of(name))
            built[name] = self.job(document, name, raw, at, workflow_env)
            granted = _grant(raw)
            if granted is not None:
                used = self.token.job(document, raw)
                grants.append(TokenGrant(granted, "job", () if used else (name,)))
        found = [u for b in built.values() for u in b.identities]
        raws = workflow_jobs(document)
        found += self.job_wide_identities(
            workflow_env, {n: (raws[n], b.units) for n, b in built.items()}
        )
        granted = _grant(data)
        if granted is not None:
            inheriting = [n for n, raw in raws.items() if "permissions" not in raw]
            unused = tuple(n for n in inheriting if not self.token.job(document, raws[n]))
            grants.append(TokenGrant(granted, "workflow", unused))
        jobs = tuple(b.job for b in built.values())
        return Pipeline(document.file, CI, jobs, tuple(grants), tuple(found))


def read(
    documents: list[Document], sources: Sources, load: Callable[[str], Document | None]
) -> Reading:
    """Every GitHub workflow and action given, plus the local ones they call."""
    files = LocalFiles(load)
    for document in documents:
        files.add(document)
    reader = _Reader(sources, files)
    extra = reader.index_callers(documents)
    reading = Reading(extra_files=[d.file for d in extra])
    for document in [*documents, *extra]:
        sources.add(document.file, document.text)
        if action_steps(document) or "runs" in (mapping(document.data) or {}):
            reading.pipelines.append(reader.action(document))
        else:
            reading.pipelines.append(reader.workflow(document))
    return reading

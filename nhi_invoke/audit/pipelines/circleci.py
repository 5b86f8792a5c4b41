"""CircleCI (`.circleci/config.yml`): jobs, orb commands, local commands, workflows.

A job's `environment` (its executor's too) reaches every step; a `run` step's `environment`
that step only. Each invocation of a job in `workflows:` (each matrix leg) is a unit of its
own, with its own contexts: the same `$ROLE_ARN` read under different contexts is different.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from nhi_invoke.audit.pipelines.nodes import Sources, mapping, script, sequence, settings, where
from nhi_invoke.audit.pipelines.yaml_tree import Map, Seq, Span

CI = "circleci"
NHI_SCRIPT = re.compile(r"\bnhi-invoke\s+run\b")
CLOUD_SCRIPT = re.compile(r"\b(aws|gcloud|gsutil|az|terraform)\s|nhi-invoke\s+run")
MAX_EXPANSION = 20
# Orb commands that leave credentials for every later step (a profile, gcloud's config).
EXPORTING = frozenset(
    {
        "aws-cli:setup",
        "aws-cli:assume_role_with_web_identity",
        "gcp-cli:setup",
        "gcp-cli:initialize",
    }
)
ENV_NAME_PARAMETERS = re.compile(r"^(aws_access_key_id|aws_secret_access_key|gcloud_service_key)$")


def looks_like(data: Any) -> bool:
    document = mapping(data)
    return (
        document is not None
        and "version" in document
        and bool({"jobs", "workflows", "orbs"} & set(document))
        and "on" not in document
    )


@dataclass(frozen=True)
class _Invocation:
    units: frozenset[str]
    scope: str  # the contexts it runs under
    parameters: Map | None


class _Builder:
    def __init__(self, document: Document, config: Map, sources: Sources) -> None:
        self.document = document
        self.config = config
        self.sources = sources
        orbs: dict[str, Any] = mapping(config.get("orbs")) or {}
        # An orb by its name (`circleci/aws-cli@4` -> `aws-cli`); an inline orb by its alias.
        self.orbs = {
            alias: str(ref).split("@", 1)[0].rsplit("/", 1)[-1].lower()
            if isinstance(ref, str)
            else alias
            for alias, ref in orbs.items()
        }
        self.commands: dict[str, Any] = mapping(config.get("commands")) or {}
        self.executors: dict[str, Any] = mapping(config.get("executors")) or {}

    def _command_steps(self, name: str) -> Any:
        command = mapping(self.commands[name])
        return command.get("steps") if command is not None else None

    def orb_command(self, name: str) -> str:
        """`aws/setup` with `orbs: {aws: circleci/aws-cli@4}` -> `aws-cli:setup`."""
        alias, _, command = name.partition("/")
        return f"{self.orbs.get(alias, alias)}:{command}" if command else name

    def _expanded(self, steps: Any, depth: int = 0) -> Iterator[tuple[Any, Span]]:
        """Steps with `when`/`unless` blocks, local commands and `auth:`-style step lists opened."""
        items = sequence(steps)
        for item, span in zip(items or [], items.spans if items else [], strict=False):
            if isinstance(item, str) and item in self.commands and depth < MAX_EXPANSION:
                yield from self._expanded(self._command_steps(item), depth + 1)
                continue
            body = mapping(item)
            if body is None or len(body) != 1:
                yield item, span
                continue
            name, params = next(iter(body.items()))
            if name in ("when", "unless") and isinstance(params, Map):
                yield from self._expanded(params.get("steps"), depth + 1)
            elif name in self.commands and depth < MAX_EXPANSION:
                yield from self._expanded(self._command_steps(name), depth + 1)
            else:
                for nested in params.values() if isinstance(params, Map) else ():
                    if isinstance(nested, Seq) and any(isinstance(n, Map) for n in nested):
                        yield from self._expanded(nested, depth + 1)
                yield item, span

    def step(self, item: Any, span: Span, index: int) -> Step:
        at = Where(span.file, span.line)
        body = mapping(item)
        if (body is None and not (isinstance(item, str) and "/" in item)) or (
            body is not None and len(body) != 1
        ):
            return Step(name=str(item), where=at)  # checkout, setup_remote_docker…
        name, params = (str(item), None) if body is None else next(iter(body.items()))
        if name == "run":
            run = mapping(params)
            command = run.get("command") if run is not None else params
            command_span = run.span_of("command") if run is not None else body.span_of("run")  # type: ignore[union-attr]
            body_script = script(command, command_span, self.sources, ("BASH_ENV",))
            return Step(
                name=str(run.get("name") or "run") if run is not None else "run",
                where=at,
                settings=settings(run.get("environment") if run is not None else None, "unit"),
                scripts=(body_script,),
                runs_nhi_invoke=bool(NHI_SCRIPT.search(body_script.text)),
                cloud=bool(CLOUD_SCRIPT.search(body_script.text)),
            )
        command = self.orb_command(name)
        given = mapping(params) or Map(span)
        named = settings(given, "unit", command)
        # Parameters that name an environment variable: the variable holds the key.
        named = tuple(
            Setting(s.name, f"${{{s.value}}}", s.where, s.reach, s.group, s.input_of)
            if ENV_NAME_PARAMETERS.match(s.name) and re.fullmatch(r"[A-Z_][A-Z0-9_]*", s.value)
            else s
            for s in named
        )
        stored_key = None
        detail = ""
        oidc = "role_arn" in given or "role-arn" in given or str(given.get("use_oidc")) == "true"
        if (
            command in EXPORTING
            and not oidc
            and not any(ENV_NAME_PARAMETERS.match(s.name) for s in named)
        ):
            stored_key = at
            detail = f"{name} reads a stored key from the project's or context's environment"
        return Step(
            name=name,
            where=at,
            uses=command,
            uses_where=at,
            settings=named,
            exports_credentials=command in EXPORTING,
            stored_key=stored_key,
            stored_key_detail=detail,
            cloud=command.startswith(("aws", "gcp", "azure")) or command in EXPORTING,
        )

    def job_settings(self, job: Map) -> tuple[Setting, ...]:
        found = settings(job.get("environment"), "job-wide")
        executor: Any = job.get("executor")
        if isinstance(executor, Map):
            executor = executor.get("name")
        defined = mapping(self.executors.get(str(executor))) if executor else None
        for source in (job, defined):
            if source is None:
                continue
            if source is defined:
                found += settings(source.get("environment"), "job-wide")
            for image in sequence(source.get("docker")) or []:
                if isinstance(image, Map):
                    found += settings(image.get("environment"), "job-wide")
                    found += settings(image.get("aws_auth"), "unit", "docker:aws_auth")
        return found

    def invocations(self, name: str) -> list[_Invocation]:
        found: list[_Invocation] = []
        workflows: dict[str, Any] = mapping(self.config.get("workflows")) or {}
        for workflow in workflows.values():
            entries = sequence(workflow.get("jobs")) if isinstance(workflow, Map) else None
            for entry in entries or []:
                if entry == name:
                    found.append(self._invocation(name, len(found), None))
                elif isinstance(entry, Map) and name in entry:
                    found.append(self._invocation(name, len(found), mapping(entry[name])))
        return found or [self._invocation(name, 0, None)]

    def _invocation(self, name: str, number: int, given: Map | None) -> _Invocation:
        context: Any = given.get("context") if given is not None else None
        contexts = sorted(
            str(c) for c in (context if isinstance(context, list) else [context] if context else [])
        )
        matrix = mapping(given.get("matrix")) if given is not None else None
        parameters = mapping(matrix.get("parameters")) if matrix is not None else None
        legs = 1
        for values in (parameters or {}).values():
            legs *= len(values) if isinstance(values, list) else 1
        units = frozenset(f"{self.document.file}#{name}#{number}#{leg}" for leg in range(legs))
        return _Invocation(units, ",".join(contexts), given)

    def identities(self, job: Job, invocations: list[_Invocation]) -> list[IdentityUse]:
        found = []
        every = frozenset().union(*(i.units for i in invocations))
        for index, step in enumerate(job.steps):
            step_units = frozenset(f"{u}#{index}" for u in every)
            # A job-level entry is one use for the whole job: read it with the first step.
            for setting in (*(job.settings if index == 0 else ()), *step.settings):
                found += [
                    IdentityUse(n.text, identities.key(n, ""), setting.where, step_units)
                    for n in identities.literals(setting.value)
                ]
                if identities.is_position(setting.name) or setting.name in ("role_arn", "role-arn"):
                    found += self._indirect(setting.value, setting.where, index, invocations)
            for script_ in step.scripts:
                for line in script_.lines:
                    for named in identities.in_script(line.text, True):
                        if named.kind == "literal":
                            found.append(
                                IdentityUse(
                                    named.text, identities.key(named, ""), line.where, step_units
                                )
                            )
                        else:
                            found += self._indirect(named.text, line.where, index, invocations)
        return found

    def _indirect(
        self, value: str, at: Where, index: int, invocations: list[_Invocation]
    ) -> list[IdentityUse]:
        named = identities.in_position(value)
        found = []
        for invocation in invocations:
            units = frozenset(f"{u}#{index}" for u in invocation.units)
            if named is not None and named.kind == "stored":
                found.append(
                    IdentityUse(named.text, identities.key(named, invocation.scope), at, units)
                )
            elif (
                named is not None
                and named.kind == "parameter"
                and invocation.parameters is not None
            ):
                given = invocation.parameters
                if named.text in given:
                    span = given.span_of(named.text)
                    found += [
                        IdentityUse(
                            n.text, identities.key(n, ""), Where(span.file, span.line), units
                        )
                        for n in identities.literals(str(given[named.text]))
                    ]
        return found


def read(
    documents: list[Document], sources: Sources, load: Callable[[str], Document | None]
) -> Reading:
    reading = Reading()
    for document in documents:
        sources.add(document.file, document.text)
        config = mapping(document.data)
        if config is None:
            reading.pipelines.append(Pipeline(document.file, CI, ()))
            continue
        builder = _Builder(document, config, sources)
        jobs, uses = [], []
        for name, raw in (mapping(config.get("jobs")) or {}).items():
            if not isinstance(raw, Map):
                continue
            steps = tuple(
                builder.step(item, span, i)
                for i, (item, span) in enumerate(builder._expanded(raw.get("steps")))
            )
            job = Job(name, where(config["jobs"].span_of(name)), steps, builder.job_settings(raw))
            jobs.append(job)
            uses += builder.identities(job, builder.invocations(name))
        reading.pipelines.append(Pipeline(document.file, CI, tuple(jobs), (), tuple(uses)))
    return reading

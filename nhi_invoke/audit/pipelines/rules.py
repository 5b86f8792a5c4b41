"""The four pipeline rules (and the unreadable file), over the dialect-neutral model.

One finding per site and kind, on the line a reviewer changes: the secret half of a key, the
`uses:` line of a step that exports credentials, the line of a script that writes them, each
textual use of a shared identity, the `id-token:` line of a grant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nhi_invoke.audit.findings import Finding, Rule, finding
from nhi_invoke.audit.pipelines import credentials
from nhi_invoke.audit.pipelines.model import (
    IdentityUse,
    Job,
    Pipeline,
    Setting,
    Step,
    TokenGrant,
    Unreadable,
    Where,
)

LONG_LIVED = Rule("NHI001", "long-lived-key", "high", "A long-lived cloud key enters the pipeline.")
JOB_WIDE = Rule(
    "NHI002",
    "job-wide-credentials",
    "high",
    "Cloud credentials reach every later step (or job), not only the one that needs them.",
)
SHARED = Rule(
    "NHI003",
    "shared-identity",
    "medium",
    "One role, service account or token audience serves more than one job or step.",
)
BROAD_TOKEN = Rule(
    "NHI004",
    "broad-id-token",
    "medium",
    "id-token: write is granted to a job (or workflow) that never requests a token.",
)
UNPARSABLE = Rule(
    "NHI005",
    "unparsable-file",
    "high",
    "A CI configuration file is not valid YAML, so it could not be audited.",
)
RULES = {r.id: r for r in (LONG_LIVED, JOB_WIDE, SHARED, BROAD_TOKEN, UNPARSABLE)}

FIX_KEY = (
    "remove the key (and revoke it); federate with OIDC and run the step under nhi-invoke, "
    "which gives it short-lived credentials of its own"
)
FIX_LITERAL = (
    "revoke this key now and remove it from the file and its history; then federate with OIDC"
)
FIX_ENV = "move it to the env of the one step that needs it (better: replace the key with OIDC)"
FIX_EXPORT = (
    "run the command that needs the credentials under nhi-invoke: they then exist in that one "
    "process only (or set output-env-credentials: false and hand the outputs to one step)"
)
FIX_WRITE = (
    "never write credentials to a file every later step or job loads; pass them to one "
    "command, or run it under nhi-invoke"
)
FIX_SHARED = (
    "give each job or step its own role or service account with only what it needs "
    "(nhi-invoke then gives every invocation a session of its own)"
)


@dataclass
class _Collector:
    found: list[Finding] = field(default_factory=list)
    covered: set[Where] = field(default_factory=set)  # lines whose literal key is reported

    def add(self, rule: Rule, where: Where, message: str, fix: str) -> None:
        self.found.append(finding(rule, where.file, where.line, message, fix))


def _settings(out: _Collector, given: tuple[Setting, ...], unit: str) -> int:
    count = 0
    for key in credentials.key_settings(given):
        setting = key.setting
        literal = key.source == "literal-key"
        out.add(
            LONG_LIVED,
            setting.where,
            f"{setting.name} holds a {'key written in the file' if literal else 'stored key'} "
            f"in {unit}",
            FIX_LITERAL if literal else FIX_KEY,
        )
        if setting.reach == "job-wide":
            out.add(
                JOB_WIDE, setting.where, f"{setting.name} is set for every step of {unit}", FIX_ENV
            )
        count += 1
    for setting in given:
        if credentials.source(setting.value) == "literal-key":
            extra = setting.value.count("\n") + 1
            out.covered |= {
                Where(setting.where.file, setting.where.line + i) for i in range(extra + 1)
            }
    return count


def _unit(job: Job, step: Step) -> str:
    """How a message names a step: `job deploy, step "Upload"`."""
    if job.name == "action":
        return f'the action\'s step "{step.name}"'
    return f"job {job.name}" if step.name == job.name else f'job {job.name}, step "{step.name}"'


def _step(
    out: _Collector, job: Job, index: int, step: Step, ci_variables: bool, keyed: bool
) -> bool:
    """The findings of one step; returns whether a key entered the job so far."""
    unit = _unit(job, step)
    keyed = _settings(out, step.settings, unit) > 0 or keyed
    if step.stored_key is not None:
        out.add(LONG_LIVED, step.stored_key, step.stored_key_detail, FIX_KEY)
        keyed = True
    declared = {s.name for s in (*job.settings, *step.settings)}
    for script in step.scripts:
        for key in credentials.script_keys(script, declared, ci_variables):
            if key.login and keyed:
                continue  # the key that entered earlier is the finding
            out.add(LONG_LIVED, key.line.where, f"{key.detail} in {unit}", FIX_KEY)
            keyed = True
        if script.env_files:
            written = credentials.credential_write(script, script.env_files)
            if written is not None:
                line, name = written
                target = "/".join(f"${f}" for f in script.env_files)
                out.add(
                    JOB_WIDE,
                    line.where,
                    f"{unit} writes {name} to {target}: every later step of the job sees it",
                    FIX_WRITE,
                )
    if step.exports_credentials and (index < len(job.steps) - 1 or step.exports_to_caller):
        later = (
            "every later step of the job that calls this action"
            if step.exports_to_caller
            else f"every later step of job {job.name}"
        )
        out.add(
            JOB_WIDE,
            step.uses_where or step.where,
            f"{step.uses or step.name} leaves credentials for {later}",
            FIX_EXPORT,
        )
    return keyed


def _dotenv(out: _Collector, job: Job) -> None:
    if job.dotenv is None:
        return
    for step in job.steps:
        for script in step.scripts:
            written = credentials.credential_write(script, job.dotenv.files)
            if written is not None:
                out.add(
                    JOB_WIDE,
                    job.dotenv.where,
                    f"{job.name} passes {written[1]} to every later job through its dotenv report",
                    FIX_WRITE,
                )
                return


def _literals(out: _Collector, file: str, lines: list[str]) -> None:
    """Keys written in the file itself, where no setting or script finding covers them."""
    reported = {Where(f.file, f.line) for f in out.found if f.rule == LONG_LIVED.id}
    for number, line in enumerate(lines, start=1):
        here = Where(file, number)
        if here in reported or here in out.covered:
            continue
        key_id = credentials.LITERAL_KEY_ID.search(line)
        if credentials.LITERAL_SECRET.search(line) or (
            key_id and key_id.group(0).lower() not in credentials.PLACEHOLDERS
        ):
            out.add(LONG_LIVED, here, "a cloud key is written in the file itself", FIX_LITERAL)


def _shared(out: _Collector, uses: list[IdentityUse]) -> None:
    by_key: dict[str, list[IdentityUse]] = {}
    for use in uses:
        by_key.setdefault(use.key, []).append(use)
    for group in by_key.values():
        units = frozenset().union(*(u.units for u in group))
        if len(units) < 2:
            continue
        places = sorted({u.where for u in group})
        for place in places:
            others = [f"{p.file}:{p.line}" for p in places if p != place]
            also = f"; also written at {', '.join(others)}" if others else ""
            message = f"{group[0].identity} serves {len(units)} jobs or steps{also}"
            out.add(SHARED, place, message, FIX_SHARED)


@dataclass(frozen=True)
class RuleResult:
    findings: list[Finding]
    cloud_steps: int
    per_invocation_steps: int


def _grant(out: _Collector, grant: TokenGrant) -> None:
    if not grant.unused_by:
        return
    jobs = ", ".join(grant.unused_by)
    never = "never requests" if len(grant.unused_by) == 1 else "never request"
    if grant.scope == "workflow":
        message = f"id-token: write is granted to every job, and {jobs} {never} a token"
        fix = "grant id-token: write in the permissions of the jobs that request tokens only"
    else:
        message = f"job {jobs} may request OIDC tokens but never does"
        fix = "remove id-token: write from this job's permissions"
    out.add(BROAD_TOKEN, grant.where, message, fix)


def run(
    pipelines: list[Pipeline], unreadable: list[Unreadable], files: dict[str, list[str]]
) -> RuleResult:
    """Every finding over the pipelines read (`files`: the lines of every file read)."""
    out = _Collector()
    cloud = nhi = 0
    for pipeline in pipelines:
        ci_variables = pipeline.ci != "github"
        for job in pipeline.jobs:
            keyed = _settings(out, job.settings, f"job {job.name}") > 0
            for index, step in enumerate(job.steps):
                before = len(out.found)
                keyed = _step(out, job, index, step, ci_variables, keyed)
                if step.cloud or step.runs_nhi_invoke or len(out.found) > before:
                    cloud += 1
                nhi += step.runs_nhi_invoke
            _dotenv(out, job)
        for grant in pipeline.grants:
            _grant(out, grant)
    for file, lines in sorted(files.items()):
        _literals(out, file, lines)
    _shared(out, [u for p in pipelines for u in p.identities])
    for bad in unreadable:
        out.add(
            UNPARSABLE,
            Where(bad.file, bad.line),
            f"not valid YAML: {bad.reason}",
            "fix the file: until then no CI can run it and this audit cannot read it",
        )
    unique: dict[tuple[str, str, int], Finding] = {}
    for item in out.found:
        unique.setdefault((item.rule, item.file, item.line), item)
    return RuleResult(list(unique.values()), cloud, nhi)

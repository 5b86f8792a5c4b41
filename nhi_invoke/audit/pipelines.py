"""`nhi-invoke audit pipelines`: find shared and long-lived identities in CI configs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from nhi_invoke.audit.findings import Finding, Rule
from nhi_invoke.audit.pipeline_files import Job, PipelineFile, Step, discover, parse

RULES = {
    r.id: r for r in (
        Rule("NHI001", "long-lived-cloud-key", "high",
             "A long-lived cloud key is given to the pipeline."),
        Rule("NHI002", "credentials-exported-job-wide", "high",
             "Cloud credentials reach every later step of the job, not just the one that "
             "needs them."),
        Rule("NHI003", "shared-identity", "medium",
             "One role or service account serves several jobs or steps."),
        Rule("NHI004", "id-token-too-wide", "medium",
             "id-token: write is granted wider than the steps that use it."),
    )
}  # fmt: skip
LONG_LIVED_NAMES = re.compile(
    r"^(AWS_SECRET_ACCESS_KEY|AWS_SECRET_KEY|GOOGLE_CREDENTIALS|GOOGLE_CLOUD_KEYFILE_JSON|"
    r"GCLOUD_KEYFILE_JSON|GCLOUD_SERVICE_KEY|GCP_SA_KEY|GCP_SERVICE_ACCOUNT_KEY|GCP_CREDENTIALS|"
    r"GOOGLE_APPLICATION_CREDENTIALS_JSON|SERVICE_ACCOUNT_KEY)$",
    re.IGNORECASE,
)
LONG_LIVED_INPUTS = frozenset(
    {"aws-secret-access-key", "credentials_json", "service_account_key", "gcloud-service-key"}
)
SECRET_REFERENCE = re.compile(
    r"(\$\{?|secrets\.|env\.)(AWS_SECRET_ACCESS_KEY|GOOGLE_CREDENTIALS|GCLOUD_SERVICE_KEY|"
    r"GCP_SA_KEY|GCP_CREDENTIALS|GCLOUD_KEYFILE_JSON|SERVICE_ACCOUNT_KEY)\b"
)
LITERAL_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
LITERAL_PRIVATE_KEY = re.compile(
    r"-----BEGIN (RSA )?PRIVATE KEY-----|\"type\"\s*:\s*"
    r"\"service_account\""
)
GITHUB_ENV_EXPORT = re.compile(
    r"(AWS_[A-Z_]+|GOOGLE_[A-Z_]+|CLOUDSDK_[A-Z_]+|[A-Z_]*(TOKEN|SECRET|CREDENTIAL)[A-Z_]*)="
    r"[^\n]*>>\s*\"?\$\{?GITHUB_ENV"
)
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
SERVICE_ACCOUNT = re.compile(r"\b[a-z0-9][\w.-]*@[a-z0-9-]+\.iam\.gserviceaccount\.com\b")
JOB_WIDE_ACTIONS = {
    "aws-actions/configure-aws-credentials": "writes the credentials to $GITHUB_ENV",
    "google-github-actions/auth": "exports a credentials file and variables to later steps",
}
JOB_WIDE_ORBS = {
    "aws-cli/setup": "writes the credentials to a profile every later step reads",
    "gcp-cli/setup": "configures gcloud for every later step",
    "gcp-cli/initialize": "configures gcloud for every later step",
}
OIDC_USE = re.compile(r"ACTIONS_ID_TOKEN_REQUEST|getIDToken|nhi-invoke|id-token")


@dataclass(frozen=True)
class PipelineReport:
    files: tuple[str, ...]
    findings: tuple[Finding, ...]
    cloud_steps: int
    per_invocation_steps: int


def _finding(
    rule_id: str,
    step_or_file: Step | PipelineFile,
    line: int,
    message: str,
    fix: str,
    severity: str | None = None,
) -> Finding:
    rule = RULES[rule_id]
    path = step_or_file.file if isinstance(step_or_file, Step) else step_or_file.path
    return Finding(rule.id, severity or rule.severity, path, line, message, fix)


def _action(uses: str) -> str:
    """`owner/repo@ref` -> `owner/repo` (and sub-paths kept)."""
    return uses.split("@", 1)[0].lower()


def uses_nhi_invoke(step: Step) -> bool:
    return (
        "nhi-invoke" in _action(step.uses)
        or re.search(r"\bnhi-invoke\s+run\b", step.script) is not None
    )


def _identities(step: Step) -> set[str]:
    text = " ".join([step.script, *map(str, step.inputs.values()), *step.env.values()])
    return set(ROLE_ARN.findall(text)) | set(SERVICE_ACCOUNT.findall(text))


def _long_lived(step: Step) -> Iterator[Finding]:
    fix = (
        "remove the key; federate with OIDC and run the step under nhi-invoke "
        "(short-lived, per-invocation credentials)"
    )
    for name, value in step.env.items():
        if LONG_LIVED_NAMES.match(name) and value:
            yield _finding(
                "NHI001",
                step,
                step.env_lines.get(name, step.line),
                f"{name} is set for {step.job}/{step.name}",
                fix,
            )
    for name, value in step.inputs.items():
        if str(name).lower() in LONG_LIVED_INPUTS and value:
            yield _finding(
                "NHI001", step, step.line, f"{step.uses or step.name} is given '{name}'", fix
            )
        elif LONG_LIVED_NAMES.match(str(name)) and value:
            yield _finding(
                "NHI001",
                step,
                step.env_lines.get(str(name), step.line),
                f"{name} is passed to {step.uses}",
                fix,
            )
    declared = {n.upper() for n in step.env} | {str(n).upper() for n in step.inputs}
    for match in SECRET_REFERENCE.finditer(step.script):
        if match.group(2).upper() not in declared:
            yield _finding(
                "NHI001",
                step,
                step.script_line,
                f"the script of {step.job}/{step.name} uses {match.group(2)}",
                fix,
            )
            break


def _job_wide(step: Step) -> Iterator[Finding]:
    action = _action(step.uses)
    why = JOB_WIDE_ACTIONS.get(action) or JOB_WIDE_ORBS.get(step.uses)
    if why:
        yield _finding(
            "NHI002",
            step,
            step.line,
            f"{step.uses} {why} ({step.job})",
            "run the command that needs the credentials under nhi-invoke instead: "
            "they then exist in that one process only",
        )
    match = GITHUB_ENV_EXPORT.search(step.script)
    if match:
        yield _finding(
            "NHI002",
            step,
            step.script_line,
            f"{step.job}/{step.name} writes {match.group(1)} to $GITHUB_ENV",
            "never write credentials to $GITHUB_ENV; pass them to one command",
        )


def _file_findings(pipeline: PipelineFile) -> Iterator[Finding]:
    for number, line in enumerate(pipeline.text.splitlines(), start=1):
        if LITERAL_ACCESS_KEY.search(line) or LITERAL_PRIVATE_KEY.search(line):
            yield _finding(
                "NHI001",
                pipeline,
                number,
                "a cloud key is written in the file itself",
                "revoke the key now, remove it from the file and its history",
                severity="critical",
            )
    if pipeline.workflow_id_token_line is not None:
        yield _finding(
            "NHI004",
            pipeline,
            pipeline.workflow_id_token_line,
            "id-token: write is granted to every job of the workflow",
            "grant it in the permissions of the jobs that request tokens only",
        )
    for job in pipeline.jobs:
        yield from _unused_id_token(pipeline, job)


def _unused_id_token(pipeline: PipelineFile, job: Job) -> Iterator[Finding]:
    if job.id_token_line is None:
        return
    for step in job.steps:
        federates = any(k in step.inputs for k in ("role-to-assume", "workload_identity_provider"))
        if federates or OIDC_USE.search(step.script + step.uses) or step.uses.startswith("./"):
            return
    yield _finding(
        "NHI004",
        pipeline,
        job.id_token_line,
        f"job {job.name} may request OIDC tokens but none of its steps does",
        "remove id-token: write from this job",
        severity="low",
    )


def _shared(steps: list[Step]) -> Iterator[Finding]:
    users: dict[str, list[Step]] = {}
    for step in steps:
        for identity in _identities(step):
            users.setdefault(identity, []).append(step)
    for identity, using in sorted(users.items()):
        places = {(s.file, s.job, s.name) for s in using}
        if len(places) < 2:
            continue
        first = min(using, key=lambda s: (s.file, s.line))
        others = ", ".join(sorted(f"{s.file}:{s.line}" for s in using if s is not first))
        all_nhi = all(uses_nhi_invoke(s) for s in using)
        message = f"{identity} serves {len(places)} steps ({first.job}/{first.name}; also {others})"
        if all_nhi:
            message += "; each gets its own session, but all share one set of permissions"
        yield _finding(
            "NHI003",
            first,
            first.line,
            message,
            "give each job or step its own role / service account with only what it needs",
            severity="low" if all_nhi else None,
        )


def _deduplicated(findings: list[Finding]) -> list[Finding]:
    """One finding per rule and place: a global variable is not reported once per job."""
    grouped: dict[tuple[str, str, int], list[Finding]] = {}
    for finding in findings:
        grouped.setdefault((finding.rule, finding.file, finding.line), []).append(finding)
    merged = []
    for group in grouped.values():
        first = group[0]
        if len(group) > 1:
            first = replace(first, message=f"{first.message} (and {len(group) - 1} more)")
        merged.append(first)
    return merged


def audit(root: str) -> PipelineReport:
    """Audit every pipeline file under `root`."""
    pipelines = []
    base = root if os.path.isdir(root) else os.path.dirname(root)
    for path in discover(root):
        parsed = parse(path, os.path.relpath(path, base) if base else path)
        if parsed is not None:
            pipelines.append(parsed)
    findings: list[Finding] = []
    steps = [s for p in pipelines for j in p.jobs for s in j.steps]
    for pipeline in pipelines:
        findings += _file_findings(pipeline)
    cloud_steps = 0
    for step in steps:
        own = [*_long_lived(step), *_job_wide(step)]
        findings += own
        if own or _identities(step) or uses_nhi_invoke(step):
            cloud_steps += 1
    findings += _shared(steps)
    return PipelineReport(
        files=tuple(p.path for p in pipelines),
        findings=tuple(sorted(_deduplicated(findings), key=lambda f: (f.file, f.line, f.rule))),
        cloud_steps=cloud_steps,
        per_invocation_steps=sum(1 for s in steps if uses_nhi_invoke(s)),
    )

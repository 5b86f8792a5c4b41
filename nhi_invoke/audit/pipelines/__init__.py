"""`nhi-invoke audit pipelines`: shared and long-lived identities in CI configuration files.

discovery.py finds the files, one module per CI dialect reads them into the model (model.py),
rules.py reports on the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from nhi_invoke.audit.findings import Finding, fingerprinted, ordered
from nhi_invoke.audit.pipelines import bitbucket, buildkite, circleci, github, gitlab
from nhi_invoke.audit.pipelines.discovery import Discovery
from nhi_invoke.audit.pipelines.model import Document, Skipped
from nhi_invoke.audit.pipelines.nodes import Sources
from nhi_invoke.audit.pipelines.rules import RULES, run
from nhi_invoke.errors import ConfigError
from nhi_invoke.figures import plural

__all__ = ["RULES", "PipelineReport", "audit"]

# Content sniffing tries the strictest shapes first: GitLab's is the loosest.
DIALECTS: dict[str, ModuleType] = {
    "bitbucket": bitbucket,
    "circleci": circleci,
    "github": github,
    "buildkite": buildkite,
    "gitlab": gitlab,
}


@dataclass(frozen=True)
class PipelineReport:
    files: tuple[str, ...]  # every file read, in order
    skipped: tuple[Skipped, ...]
    findings: tuple[Finding, ...]
    cloud_steps: int
    per_invocation_steps: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped],
            "findings": [f.as_dict() for f in self.findings],
            "cloud_steps": self.cloud_steps,
            "per_invocation_steps": self.per_invocation_steps,
        }

    def summary(self) -> str:
        """How many cloud steps already run under nhi-invoke, and what was skipped."""
        text = (
            f"steps that use a cloud identity: {self.cloud_steps}; under nhi-invoke "
            f"(one identity per invocation): {self.per_invocation_steps}"
        )
        if self.skipped:
            text += f"\n{plural(len(self.skipped), 'file')} skipped (--verbose lists them)"
        return text

    def listing(self) -> str:
        """Every file read, then every file skipped and why."""
        read = [f"read: {f}" for f in self.files]
        skipped = [f"skipped: {s.file} ({s.reason})" for s in self.skipped]
        return "\n".join(read + skipped)


class NothingToAudit(ConfigError):
    """A path with no file any supported CI reads: a gate that read nothing must not pass."""


def _loader(discovery: Discovery, ci: str) -> Callable[[str], Document | None]:
    """How a dialect reads a file its files name (a local action, an include) as its own CI."""

    def load(path: str) -> Document | None:
        return discovery.load(path, ci)

    return load


def audit(root: str, excludes: tuple[str, ...] = ()) -> PipelineReport:
    """Audit every pipeline file under `root` (a folder or one file)."""
    discovery = Discovery(root, excludes, {n: d.looks_like for n, d in DIALECTS.items()})
    discovery.walk()
    found = [d for docs in discovery.documents.values() for d in docs]
    if not found and not discovery.unreadable:
        shown = "; ".join(f"{s.file}: {s.reason}" for s in discovery.skipped[:3])
        more = ", ..." if len(discovery.skipped) > 3 else ""
        looked = (
            f" ({plural(len(discovery.skipped), 'file')} skipped: {shown}{more})" if shown else ""
        )
        raise NothingToAudit(
            f"no pipeline file to audit in {root}{looked}",
            "pass a repository checkout or a CI configuration file",
        )
    sources = Sources()
    pipelines = []
    extra: list[str] = []
    skipped = list(discovery.skipped)
    for name, dialect in DIALECTS.items():
        documents = list(discovery.documents.get(name, []))
        if not documents:
            continue
        reading = dialect.read(documents, sources, _loader(discovery, name))
        pipelines += reading.pipelines
        extra += [f for f in reading.extra_files if f not in extra]
        skipped += reading.skipped
    for bad in discovery.unreadable:
        sources.add(bad.file, bad.text)
    result = run(pipelines, discovery.unreadable, sources.lines)

    def line_text(file: str, line: int) -> str:
        lines = sources.lines.get(file, [])
        return lines[line - 1] if 0 < line <= len(lines) else ""

    read = [d.file for d in found] + [f for f in extra if f not in {d.file for d in found}]
    read += [u.file for u in discovery.unreadable]
    return PipelineReport(
        files=tuple(sorted(set(read))),
        skipped=tuple(sorted(set(skipped), key=lambda s: s.file)),
        findings=ordered(fingerprinted(result.findings, line_text)),
        cloud_steps=result.cloud_steps,
        per_invocation_steps=result.per_invocation_steps,
    )

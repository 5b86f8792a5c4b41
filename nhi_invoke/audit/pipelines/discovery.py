"""Which files to audit: every file a supported CI reads, and any YAML file shaped like one.

A file at a CI's own path (`.github/workflows/*.yml`, `.gitlab-ci.yml`…) is read whatever it
holds, and one that is not YAML is reported as a finding. Any other `.yml`/`.yaml` file is read
when its content has a supported CI's shape (a GitLab template, a workflow kept in `ci/`…);
anything else (docker-compose, Kubernetes manifests, a broken Helm template) is skipped, with
the reason.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nhi_invoke.audit.pipelines.model import Document, Skipped, Unreadable
from nhi_invoke.audit.pipelines.nodes import mapping
from nhi_invoke.audit.pipelines.yaml_tree import Map, UnreadableYaml, load_documents
from nhi_invoke.errors import ConfigError

MAX_FILE_BYTES = 2 * 1024 * 1024
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".terraform",
    }
)
YAML = (".yml", ".yaml")
# Words one of the supported CIs' files always has; a file with none of them is not parsed.
PIPELINE_WORDS = re.compile(
    r"^\s*-?\s*(jobs|steps|pipelines|runs|script|stages|extends|include|command|commands|"
    r"workflows|trigger)\s*:",
    re.MULTILINE,
)


def ci_of_path(relative: str) -> str | None:
    """The CI that reads a file at this path, if any."""
    parts = relative.replace(os.sep, "/").split("/")
    name = parts[-1]
    parent = parts[-2] if len(parts) >= 2 else ""
    if len(parts) >= 3 and parts[-3:-1] == [".github", "workflows"] and name.endswith(YAML):
        return "github"
    if name in ("action.yml", "action.yaml"):
        return "github"
    if name in (".gitlab-ci.yml", ".gitlab-ci.yaml"):
        return "gitlab"
    if parent == ".circleci" and name in ("config.yml", "config.yaml"):
        return "circleci"
    if (parent == ".buildkite" and name in ("pipeline.yml", "pipeline.yaml", "pipeline.json")) or (
        name in ("buildkite.yml", "buildkite.yaml", "buildkite.json")
    ):
        return "buildkite"
    if name == "bitbucket-pipelines.yml":
        return "bitbucket"
    return None


def _not_a_pipeline(data: Any) -> str:
    document = mapping(data)
    if document is not None:
        services = mapping(document.get("services"))
        if services is not None and any(
            isinstance(s, Map) and {"image", "build"} & set(s) for s in services.values()
        ):
            return "a docker-compose file, not a pipeline"
        if "apiVersion" in document and "kind" in document:
            return "a Kubernetes manifest, not a pipeline"
    return "not a pipeline of a supported CI"


def _not_a_pipeline_text(text: str) -> str:
    """The same judgement as `_not_a_pipeline`, from top-level keys, for a file not parsed."""
    keys = set(re.findall(r"^([A-Za-z][\w-]*)\s*:", text, re.MULTILINE))
    if "services" in keys and re.search(r"^\s+(image|build)\s*:", text, re.MULTILINE):
        return "a docker-compose file, not a pipeline"
    if {"apiVersion", "kind"} <= keys:
        return "a Kubernetes manifest, not a pipeline"
    return "not a pipeline of a supported CI"


@dataclass
class Discovery:
    """The files found under a path: by CI, skipped (and why), and not readable."""

    root: str
    excludes: tuple[str, ...]
    sniffers: dict[str, Callable[[Any], bool]]
    documents: dict[str, list[Document]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    cache: dict[str, Document | None] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """What paths are shown relative to: the folder audited; for one file, the checkout
        holding its CI folder (`.github/workflows/x.yml` stays `.github/workflows/x.yml`)."""
        if os.path.isdir(self.root):
            return self.root
        parts = os.path.abspath(self.root).split(os.sep)
        for folder in (".github", ".circleci", ".buildkite"):
            if folder in parts[:-1]:
                return os.sep.join(parts[: len(parts) - 1 - parts[::-1].index(folder)]) or os.sep
        return os.path.dirname(self.root)

    def shown(self, path: str) -> str:
        return os.path.relpath(path, self.base or ".").replace(os.sep, "/")

    def excluded_by(self, relative: str) -> str | None:
        for pattern in self.excludes:
            cleaned = pattern.rstrip("/")
            if fnmatch.fnmatch(relative, cleaned) or fnmatch.fnmatch(
                relative, cleaned.removeprefix("**/")
            ):
                return pattern
        return None

    def _read(self, path: str, shown: str) -> str | None:
        try:
            if os.path.getsize(path) > MAX_FILE_BYTES:
                self.skipped.append(Skipped(shown, "larger than 2 MiB"))
                return None
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError as exc:
            self.skipped.append(Skipped(shown, f"cannot be read: {exc.strerror}"))
            return None

    def load(
        self, path: str, expected: str | None = None, walking: bool = False
    ) -> Document | None:
        """Read one file as a pipeline of `expected` (or of whatever CI its content shows).

        Files the dialects ask for (a local action, a GitLab include) are read once and
        cached; only the files found by the walk are registered as documents to audit.
        """
        real = os.path.normpath(path)
        shown = self.shown(real)
        if real in self.cache:
            cached = self.cache[real]
            if cached is not None or expected is None:
                return cached
            self.skipped = [s for s in self.skipped if s.file != shown]  # read it as expected
        elif not walking and self.excluded_by(shown) is not None:
            return None
        document = self._parse(real, shown, expected or ci_of_path(shown))
        self.cache[real] = document
        if document is not None and walking:
            self.documents.setdefault(document.ci, []).append(document)
        return document

    def _parse(self, real: str, shown: str, known: str | None) -> Document | None:
        text = self._read(real, shown)
        if text is None:
            return None
        if known is None and not PIPELINE_WORDS.search(text):
            self.skipped.append(Skipped(shown, _not_a_pipeline_text(text)))
            return None
        try:
            parts = [d for d in load_documents(shown, text) if d is not None]
        except UnreadableYaml as bad:
            if known is not None:
                self.unreadable.append(Unreadable(shown, bad.line, bad.reason, text))
            else:
                self.skipped.append(Skipped(shown, f"not valid YAML (line {bad.line})"))
            return None
        if len(parts) == 2 and isinstance(parts[0], Map) and set(parts[0]) == {"spec"}:
            parts = parts[1:]  # GitLab's header document of inputs
        if len(parts) > 1:
            self.skipped.append(Skipped(shown, "several YAML documents: not a pipeline"))
            return None
        data = parts[0] if parts else None
        ci = known
        if ci == "github" and os.path.basename(real).startswith("action.") and data is not None:
            ci = "github" if self.sniffers["github"](data) else None
        if ci is None:
            ci = next((name for name, sniff in self.sniffers.items() if sniff(data)), None)
        if ci is None:
            self.skipped.append(Skipped(shown, _not_a_pipeline(data)))
            return None
        return Document(real, shown, ci, data, text)

    def walk(self) -> None:
        if os.path.isfile(self.root):
            self.load(self.root, walking=True)
            return
        if not os.path.isdir(self.root):
            raise ConfigError(f"{self.root} does not exist", "pass a repository checkout or a file")
        for directory, folders, files in os.walk(self.root):
            kept = []
            for folder in sorted(folders):
                relative = self.shown(os.path.join(directory, folder))
                pattern = self.excluded_by(relative)
                if pattern is not None:
                    self.skipped.append(Skipped(relative + "/", f"excluded by --exclude {pattern}"))
                elif folder not in SKIPPED_DIRS:
                    kept.append(folder)
            folders[:] = kept
            for name in sorted(files):
                path = os.path.join(directory, name)
                relative = self.shown(path)
                if not (name.endswith(YAML) or ci_of_path(relative)):
                    continue
                pattern = self.excluded_by(relative)
                if pattern is not None:
                    self.skipped.append(Skipped(relative, f"excluded by --exclude {pattern}"))
                    continue
                self.load(path, walking=True)

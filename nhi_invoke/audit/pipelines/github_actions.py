"""GitHub Actions: what a step does with credentials and tokens, and the local files it calls.

A step calls a local composite action (`uses: ./.github/actions/x`), which may call another;
a job calls a local reusable workflow (`uses: ./.github/workflows/x.yml`). Both are read here,
once, so that a job which only calls them still counts as using its OIDC token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nhi_invoke.audit.pipelines.model import Document
from nhi_invoke.audit.pipelines.nodes import action_name, mapping, sequence, text
from nhi_invoke.audit.pipelines.yaml_tree import Map

CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
GOOGLE_AUTH = "google-github-actions/auth"
SETUP_GCLOUD = "google-github-actions/setup-gcloud"
AZURE_LOGIN = "azure/login"
NHI_ACTION = "nhi-invoke/nhi-invoke"
# Actions that request the job's OIDC token whatever their inputs.
TOKEN_ACTIONS = frozenset(
    {
        "actions/attest-build-provenance",
        "actions/attest-sbom",
        "actions/attest",
        "octo-sts/action",
        "sigstore/gh-action-sigstore-python",
        "rust-lang/crates-io-auth-action",
        "rubygems/configure-rubygems-credentials",
        "rubygems/release-gem",
        "actions/deploy-pages",
        "actions/publish-immutable-action",
        "pulumi/auth-actions",
        NHI_ACTION,
    }
)
CLOUD_ACTIONS = frozenset({CONFIGURE_AWS, GOOGLE_AUTH, SETUP_GCLOUD, AZURE_LOGIN, NHI_ACTION})
TOKEN_SCRIPT = re.compile(
    r"ACTIONS_ID_TOKEN_REQUEST_(TOKEN|URL)|\bgetIDToken\s*\(|\bnhi-invoke\s+(run|sandbox)\b|"
    r"\b(npm|pnpm)\s+publish\b|\buv\s+publish\b"
)
_COSIGN = re.compile(r"\bcosign\s+(sign|attest)(-blob)?\b(?![^\n]*--key\b)")
NHI_SCRIPT = re.compile(r"\bnhi-invoke\s+run\b")


def is_false(value: Any) -> bool:
    return str(value).strip().lower() in ("false", "no", "off", "0")


def is_true(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "yes", "on", "1")


def step_uses(step: Map) -> str:
    return action_name(str(step.get("uses") or ""))


def inputs(step: Map) -> Map:
    found = mapping(step.get("with"))
    return found if found is not None else Map(step.span)


def _configures_aws(uses: str) -> bool:
    """configure-aws-credentials, or a fork of it pinned under another owner."""
    return uses == CONFIGURE_AWS or uses.endswith("/configure-aws-credentials")


def exports_credentials(uses: str, given: Map) -> bool:
    """Whether an action leaves credentials for every later step of the job."""
    if _configures_aws(uses):
        return not is_false(given.get("output-env-credentials", "true"))
    if uses == GOOGLE_AUTH:
        return not (
            is_false(given.get("create_credentials_file", "true"))
            and is_false(given.get("export_environment_variables", "true"))
        )
    if uses == AZURE_LOGIN:
        return True  # the az CLI stays logged in for every later step
    return uses == SETUP_GCLOUD and bool(given.get("service_account_key"))


def action_uses_token(uses: str, given: Map) -> bool:
    if uses in TOKEN_ACTIONS:
        return True
    if _configures_aws(uses) or (uses not in CLOUD_ACTIONS and "role-to-assume" in given):
        # Also an action we cannot read (`uses: ./`, a wrapper) given a role and no key.
        return bool(given.get("role-to-assume")) and not given.get("aws-secret-access-key")
    if uses == GOOGLE_AUTH or "workload_identity_provider" in given:
        return bool(given.get("workload_identity_provider"))
    if uses == AZURE_LOGIN:
        return bool(given.get("client-id")) and not given.get("creds")
    if uses == "pypa/gh-action-pypi-publish":
        return not given.get("password")  # trusted publishing
    if uses == "hashicorp/vault-action":
        return str(given.get("method", "")).lower() == "jwt"
    if any("oidc" in name.lower() and not is_false(value) for name, value in given.items()):
        return True  # use_oidc: true, oidc-provider-name: …

    if uses == "actions/github-script":
        return bool(TOKEN_SCRIPT.search(text(given.get("script"))))
    return False


def script_uses_token(script: str) -> bool:
    return bool(TOKEN_SCRIPT.search(script) or _COSIGN.search(script))


@dataclass
class LocalFiles:
    """Local actions and reusable workflows by their path on disk, read once each."""

    load: Callable[[str], Document | None]
    by_path: dict[str, Document] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def add(self, document: Document) -> None:
        self.by_path[os.path.normpath(document.path)] = document

    def _get(self, path: str) -> Document | None:
        path = os.path.normpath(path)
        if path in self.by_path:
            return self.by_path[path]
        if path in self.missing or not os.path.isfile(path):
            self.missing.add(path)
            return None
        document = self.load(path)
        if document is None:
            self.missing.add(path)
        else:
            self.by_path[path] = document
        return document

    def resolve(self, caller: Document, uses: str) -> Document | None:
        """The local action or reusable workflow a `uses: ./…` of `caller` names."""
        if not uses.startswith("./"):
            return None
        root = repository_root(caller.path)
        target = os.path.join(root, uses[2:].split("@", 1)[0])
        if target.endswith((".yml", ".yaml")):
            return self._get(target)
        for name in ("action.yml", "action.yaml"):
            found = self._get(os.path.join(target, name))
            if found is not None:
                return found
        return None


def repository_root(path: str) -> str:
    """The checkout a file belongs to: the folder holding its `.github`, else its own folder."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    if ".github" in parts:
        return os.sep.join(parts[: len(parts) - 1 - parts[::-1].index(".github")]) or os.sep
    return os.path.dirname(os.path.abspath(path))


def action_steps(document: Document) -> list[Map]:
    """The steps of a composite action (none for JavaScript and Docker actions)."""
    data = mapping(document.data)
    runs = mapping(data.get("runs")) if data is not None else None
    found = sequence(runs.get("steps")) if runs is not None else None
    return [s for s in found or () if isinstance(s, Map)]


def workflow_jobs(document: Document) -> dict[str, Map]:
    data = mapping(document.data)
    jobs = mapping(data.get("jobs")) if data is not None else None
    return {name: job for name, job in (jobs or {}).items() if isinstance(job, Map)}


class TokenUse:
    """Whether a step, a job or a local file requests the job's OIDC token (cycles cut)."""

    def __init__(self, files: LocalFiles) -> None:
        self.files = files
        self.known: dict[str, bool] = {}

    def step(self, document: Document, step: Map) -> bool:
        uses = step_uses(step)
        env_text = text(step.get("env"))
        if script_uses_token(text(step.get("run"))) or "ACTIONS_ID_TOKEN_REQUEST" in env_text:
            return True
        if action_uses_token(uses, inputs(step)):
            return True
        target = self.files.resolve(document, uses)
        return target is not None and self.file(target)

    def job(self, document: Document, job: Map) -> bool:
        if job.get("uses"):
            target = self.files.resolve(document, str(job["uses"]))
            # A remote reusable workflow cannot be read: its caller's grant is taken as needed.
            return True if target is None else self.file(target)
        steps: list[Any] = sequence(job.get("steps")) or []
        return any(self.step(document, s) for s in steps if isinstance(s, Map))

    def file(self, document: Document) -> bool:
        path = os.path.normpath(document.path)
        if path not in self.known:
            self.known[path] = False  # a cycle uses nothing more
            if action_steps(document):
                used = any(self.step(document, s) for s in action_steps(document))
            else:
                used = any(self.job(document, j) for j in workflow_jobs(document).values())
            self.known[path] = used
        return self.known[path]

    def cloud(self, document: Document, step: Map, seen: frozenset[str] = frozenset()) -> bool:
        """Whether a step reaches a cloud (itself, or through the local action it calls)."""
        uses = step_uses(step)
        if uses in CLOUD_ACTIONS or NHI_SCRIPT.search(text(step.get("run"))):
            return True
        target = self.files.resolve(document, uses)
        if target is None or os.path.normpath(target.path) in seen:
            return False
        inner = seen | {os.path.normpath(target.path)}
        return any(self.cloud(target, s, inner) for s in action_steps(target))

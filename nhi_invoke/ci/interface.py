"""The contract every CI provider keeps.

Tri-state, as in di/id: `context()` returns None when this is not that CI, a `CIContext`
when it is; fetching a token raises a `ConfigError` (exit 78) when it is that CI but no
token can be had, and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from nhi_invoke.retry import RetryPolicy


@dataclass(frozen=True)
class CIContext:
    """Who and what is running this invocation, as the CI reports it."""

    provider: str
    repository: str | None = None
    run_id: str | None = None
    run_attempt: str | None = None
    job: str | None = None
    step: str | None = None
    ref: str | None = None
    sha: str | None = None
    actor: str | None = None
    workflow: str | None = None
    # Variables that let a process mint tokens of its own; stripped from the child.
    token_variables: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, str]:
        """The known context values, for the plan, tags and the ledger."""
        keys = (
            "repository",
            "run_id",
            "run_attempt",
            "job",
            "step",
            "ref",
            "sha",
            "actor",
            "workflow",
        )
        return {"provider": self.provider} | {
            k: v for k in keys if (v := getattr(self, k)) is not None
        }


LOCAL = CIContext(provider="local")


class Reporting(Protocol):
    """What a CI offers to show results without showing secrets. Each CI implements what it
    has (GitHub: all of it); a capability the CI lacks does nothing."""

    def mask(self, value: str, *, own_line: bool = False) -> None:
        """Hide `value` in every later log line. `own_line`: another process may be
        mid-line on the same output, so start a line of our own."""
        ...

    def write_summary(self, markdown: str) -> None:
        """Append to the job's summary page; raises OSError when it cannot be written."""
        ...

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        """Publish step outputs (names and other non-secret values only); raises ValueError,
        having published nothing, for a value that is not one printable line, and OSError
        when the outputs cannot be written."""
        ...


class NoReporting:
    """A CI (or none) without these capabilities: nothing to mask, summarise or publish."""

    def mask(self, value: str, *, own_line: bool = False) -> None:
        """Nothing masks log lines here."""

    def write_summary(self, markdown: str) -> None:
        """There is no summary page."""

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        """There are no step outputs."""


class CIProvider(Protocol):
    """One CI system: detect it, describe the run, fetch OIDC tokens from it, and report."""

    name: str

    def context(self, environ: Mapping[str, str]) -> CIContext | None:
        """The run's context, or None when this process is not running on this CI."""
        ...

    def fetch_token(self, environ: Mapping[str, str], audience: str, policy: RetryPolicy) -> str:
        """An OIDC token for `audience`; raises ConfigError when this CI cannot issue one."""
        ...

    def reporting(self, environ: Mapping[str, str]) -> Reporting:
        """This CI's masking, job summary and step outputs."""
        ...


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """A variable's value, with empty treated as unset (CI systems export empty strings)."""
    value = environ.get(name)
    return value if value else None


class TokenSource(Protocol):
    """Where this invocation's OIDC tokens come from; asked again for a fresh one."""

    @property
    def description(self) -> str:
        """Where the token comes from, for the plan and the ledger."""
        ...

    def fetch(self, audience: str) -> str:
        """An OIDC token meant for `audience` (checked by the caller, not here)."""
        ...

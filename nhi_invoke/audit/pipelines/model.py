"""What every CI dialect reads its files into, and what the rules read.

A dialect (github.py, gitlab.py, …) knows its CI's keywords; the rules (rules.py) know only
this model. Everything carries the place (file, line) a finding about it would point at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Reach = Literal["unit", "job-wide"]


@dataclass(frozen=True, order=True)
class Where:
    file: str
    line: int


@dataclass(frozen=True)
class Setting:
    """One NAME: value a step or job is given: an env/variables entry, an input, a parameter.

    `reach` is "job-wide" when every step of a job (or every job of a pipeline) receives it;
    `group` is the mapping it sits in, so that a key id and its secret count as one key.
    """

    name: str
    value: str
    where: Where
    reach: Reach
    group: Where
    input_of: str = ""  # the action/orb/plugin/pipe whose input this is ("" for env)
    local_input: bool = False  # an input of a local action or reusable workflow


@dataclass(frozen=True)
class ScriptLine:
    where: Where
    text: str


@dataclass(frozen=True)
class Script:
    """A script (run:, script:, command:) with the source line of each of its lines."""

    text: str
    lines: tuple[ScriptLine, ...]
    env_files: tuple[str, ...] = ()  # files whose lines become every later step's env


@dataclass(frozen=True)
class IdentityUse:
    """One textual use of an identity and the units (steps of jobs, per leg) it serves."""

    identity: str  # what is shown: an ARN, an email, an expression, an audience
    key: str  # what makes two uses the same identity
    where: Where
    units: frozenset[str]


@dataclass(frozen=True)
class Step:
    name: str
    where: Where
    uses: str = ""  # action, orb command, plugin or pipe (lowercase, without version)
    uses_where: Where | None = None
    settings: tuple[Setting, ...] = ()
    scripts: tuple[Script, ...] = ()
    # Leaves credentials for every later step (configure-aws-credentials, aws-cli/setup…).
    exports_credentials: bool = False
    # Inside a composite action the credentials also reach the calling job's later steps.
    exports_to_caller: bool = False
    stored_key: Where | None = None  # reads a stored key that the file does not name
    stored_key_detail: str = ""
    runs_nhi_invoke: bool = False
    cloud: bool = False


@dataclass(frozen=True)
class DotenvReport:
    """GitLab `artifacts:reports:dotenv`: variables that reach the jobs that follow."""

    files: tuple[str, ...]
    where: Where


@dataclass(frozen=True)
class Job:
    name: str
    where: Where
    steps: tuple[Step, ...]
    settings: tuple[Setting, ...] = ()  # job- and pipeline-level entries that reach this job
    dotenv: DotenvReport | None = None


@dataclass(frozen=True)
class TokenGrant:
    """`id-token: write` (GitHub): where it is granted and whether every job it reaches uses it."""

    where: Where
    scope: Literal["workflow", "job"]
    unused_by: tuple[str, ...]  # the jobs it reaches that never request a token


@dataclass(frozen=True)
class Pipeline:
    file: str
    ci: str
    jobs: tuple[Job, ...]
    grants: tuple[TokenGrant, ...] = ()
    identities: tuple[IdentityUse, ...] = ()


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str


@dataclass(frozen=True)
class Unreadable:
    file: str
    line: int
    reason: str
    text: str = ""


@dataclass(frozen=True)
class Document:
    """A file the discovery decided to read, and the dialect it belongs to."""

    path: str  # on disk
    file: str  # as shown (relative to what was audited)
    ci: str
    data: object
    text: str


@dataclass
class Reading:
    """What the dialects return: pipelines, and files they read or skipped on the way."""

    pipelines: list[Pipeline] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)  # read through include:, uses: …
    skipped: list[Skipped] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)

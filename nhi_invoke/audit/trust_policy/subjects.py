"""What a `sub` value lets in, per issuer: its owner (organisation) part and its project part.

GitHub `repo:OWNER/REPO:…`, GitLab `project_path:GROUP/…/PROJECT:…`, Buildkite
`organization:ORG:pipeline:PIPELINE:…`, Terraform Cloud `organization:ORG:project:…`, CircleCI
`org/ORG/project/PROJECT/…`, Bitbucket `{REPOSITORY}:…`. IAM's `StringLike` wildcards (`*`,
`?`) may appear anywhere and match `/` and `:` too: what counts is the literal text before the
first wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WILDCARDS = "*?"


@dataclass(frozen=True)
class Issuer:
    name: str
    prefix: str  # what every subject starts with
    owner_end: str  # what ends the owner part
    project_start: str  # what starts the project part, after the owner
    project_end: str  # what ends the project part

    def open_part(self, pattern: str) -> str:
        """Which part a `StringLike` pattern leaves open: "all", "owner", "project" or ""."""
        cut = min((pattern.find(c) for c in WILDCARDS if c in pattern), default=-1)
        if cut < 0:
            return ""
        literal = pattern[:cut]
        if self.prefix.startswith(literal):
            return "all"  # nothing of the owner is fixed: any subject of the issuer
        if not literal.startswith(self.prefix):
            return ""  # not this issuer's form (a custom subject): not judged
        rest = literal[len(self.prefix) :]
        if not self.owner_end:  # the issuer pins the owner; the subject starts with the project
            return "project" if self.project_end not in rest else ""
        if self.owner_end not in rest:
            return "owner"
        after_owner = rest.split(self.owner_end, 1)[1]
        if self.project_start and not after_owner.startswith(self.project_start):
            return "project" if self.project_start.startswith(after_owner) else ""
        project = after_owner[len(self.project_start) :]
        return "project" if self.project_end not in project else ""


ISSUERS = {
    "github": Issuer("github", "repo:", "/", "", ":"),
    "gitlab": Issuer("gitlab", "project_path:", "/", "", ":"),
    "buildkite": Issuer("buildkite", "organization:", ":", "pipeline:", ":"),
    "terraform": Issuer("terraform", "organization:", ":", "project:", ":"),
    "circleci": Issuer("circleci", "org/", "/", "project/", "/"),
    "bitbucket": Issuer("bitbucket", "", "", "", ":"),
}


def issuer_of(host: str) -> str:
    """The issuer kind of an IAM OIDC provider's host (and path)."""
    lowered = host.lower()
    if "token.actions.githubusercontent.com" in lowered or lowered.endswith("/_services/token"):
        return "github"
    if lowered.startswith("oidc.circleci.com/org/"):
        return "circleci"
    if "agent.buildkite.com" in lowered:
        return "buildkite"
    if "api.bitbucket.org" in lowered or "bitbucket" in lowered:
        return "bitbucket"
    if "app.terraform.io" in lowered or "terraform" in lowered:
        return "terraform"
    if "gitlab" in lowered:
        return "gitlab"
    return ""


def issuer_of_subjects(values: list[str]) -> str:
    """The issuer a provider of unknown host serves, from its subjects' form."""
    for value in values:
        for name in ("github", "gitlab", "circleci"):
            if value.startswith(ISSUERS[name].prefix):
                return name
        if value.startswith("organization:") and ":pipeline:" in value:
            return "buildkite"
    return ""


# GitHub's immutable subject: repo:OWNER@OWNER_ID/REPO@REPO_ID, then :context or nothing.
IMMUTABLE = re.compile(r"^repo:[^/:@]+@\d+/[^/:@]+@\d+(:|$)")
_NAME = re.compile(r"[A-Za-z0-9_.-]")
# The same form as a small automaton: (state, character class, next state); 9 accepts.
_STATES: dict[int, list[tuple[str, int]]] = {
    **{i: [("repo:"[i], i + 1)] for i in range(5)},
    5: [("name", 6)],
    6: [("name", 6), ("@", 7)],
    7: [("digit", 8)],
    8: [("digit", 8), ("/", 10)],
    10: [("name", 11)],
    11: [("name", 11), ("@", 12)],
    12: [("digit", 13)],
    13: [("digit", 13), (":", 9)],
    9: [("any", 9)],
}
_ACCEPTING = frozenset({9, 13})


def _accepts(kind: str, char: str | None) -> bool:
    """Whether a transition of `kind` takes `char` (None: any character the pattern's
    wildcard chooses, so any class that has a member)."""
    if char is None:
        return True
    if kind == "name":
        return bool(_NAME.match(char)) and char != "@"
    if kind == "digit":
        return char.isdigit()
    if kind == "any":
        return True
    return char == kind


def can_match_immutable(pattern: str, like: bool) -> bool:
    """Whether `pattern` (a `StringLike` pattern when `like`) matches some immutable subject."""
    if not like or not any(c in pattern for c in WILDCARDS):
        return bool(IMMUTABLE.match(pattern))

    # Walk the pattern and the automaton together; a star may match nothing or one more
    # character, so the search keeps every (position, state) pair it has seen.
    seen: set[tuple[int, int]] = set()
    frontier = [(0, 0)]
    while frontier:
        position, state = frontier.pop()
        if (position, state) in seen:
            continue
        seen.add((position, state))
        if position == len(pattern):
            if state in _ACCEPTING:
                return True
            continue
        char = pattern[position]
        if char == "*":
            frontier.append((position + 1, state))
        wanted = None if char in WILDCARDS else char
        for kind, target in _STATES[state]:
            if _accepts(kind, wanted):
                frontier.append((position if char == "*" else position + 1, target))
    return False

"""Session tags for the chained hop: ours, the CI's context, then the user's. Pure.

Every value is valid by construction (AWS's tag pattern, limited to its ASCII part so that
every STS endpoint and every downstream system accepts it unchanged); what cannot be made
valid (a reserved prefix, a duplicate key, too many tags) is a configuration error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.naming import ascii_fold

if TYPE_CHECKING:
    from nhi_invoke.tasks.context import TaskContext

MAX_TAGS = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
# AWS's pattern is [\p{L}\p{Z}\p{N}_.:/=+\-@]; we keep to its ASCII part.
TAG_PATTERN = re.compile(r"[A-Za-z0-9 _.:/=+@-]*", re.ASCII)
_TAG_BAD = re.compile(r"[^A-Za-z0-9 _.:/=+@-]", re.ASCII)
RESERVED_TAG_PREFIXES = ("aws:", "nhi:", "ci:")
TRANSITIVE_TAG_KEYS = ("nhi:invocation", "nhi:step")


@dataclass(frozen=True)
class SessionTag:
    key: str
    value: str


def _tag_text(text: str, limit: int) -> str:
    return _TAG_BAD.sub("_", ascii_fold(text))[:limit]


def session_tags(
    step_id: str,
    context: CIContext,
    invocation: str,
    extra: Sequence[tuple[str, str]] = (),
    task: TaskContext | None = None,
) -> tuple[SessionTag, ...]:
    """The chained hop's session tags: ours (with an agent's task context), the CI's context,
    then the user's."""
    ours: list[tuple[str, str | None]] = [
        ("nhi:invocation", invocation),
        ("nhi:step", step_id),
        ("nhi:agent", task.agent if task else None),
        # As given by the caller: a policy may key on it (aws:PrincipalTag/nhi:on-behalf-of).
        ("nhi:on-behalf-of", task.on_behalf_of if task else None),
        ("ci:provider", context.provider),
        ("ci:repository", context.repository),
        ("ci:run-id", context.run_id),
        ("ci:run-attempt", context.run_attempt),
        ("ci:ref", context.ref),
        ("ci:sha", context.sha),
        ("ci:actor", context.actor),
        ("ci:workflow", context.workflow),
    ]
    tags = [SessionTag(k, _tag_text(v, TAG_VALUE_MAX)) for k, v in ours if v]
    seen = {t.key.lower() for t in tags}
    for raw_key, raw_value in extra:
        if raw_key.lower().startswith(RESERVED_TAG_PREFIXES):
            raise ConfigError(
                f"the tag key {raw_key[:60]!r} uses a reserved prefix (aws:, nhi:, ci:)",
                "choose another key; nhi-invoke sets nhi: and ci: tags itself",
            )
        if len(raw_key) > TAG_KEY_MAX or len(raw_value) > TAG_VALUE_MAX:
            raise ConfigError(
                f"the tag {raw_key[:60]!r} is too long (keys at most {TAG_KEY_MAX}, values at "
                f"most {TAG_VALUE_MAX} characters)",
                "shorten the tag",
            )
        key = _tag_text(raw_key, TAG_KEY_MAX)
        if not key:
            raise ConfigError(f"the tag key {raw_key!r} has no usable character", "name the tag")
        if key.lower() in seen:
            raise ConfigError(
                f"the tag key {key!r} is given twice (AWS tag keys ignore case)",
                "give each tag once",
            )
        seen.add(key.lower())
        tags.append(SessionTag(key, _tag_text(raw_value, TAG_VALUE_MAX)))
    if len(tags) > MAX_TAGS:
        raise ConfigError(
            f"{len(tags)} session tags, more than the {MAX_TAGS} STS accepts "
            f"({len(tags) - len(extra)} are set by nhi-invoke)",
            f"pass at most {MAX_TAGS - (len(tags) - len(extra))} --tag options",
        )
    return tuple(tags)

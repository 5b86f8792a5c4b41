"""Invocation ids, STS session names and session tags. Pure functions, no I/O.

AWS validates these with patterns moto does not check, so every value produced here is valid
by construction: invalid characters are replaced, never rejected, and long names are
shortened deterministically with a hash suffix.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError

INVOCATION_ID_LENGTH = 12
SESSION_NAME_MAX = 64
SESSION_NAME_PATTERN = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}", re.ASCII)
_SESSION_BAD = re.compile(r"[^A-Za-z0-9_+=,.@-]+", re.ASCII)
RUN_PART_MAX = 24
HASH_LENGTH = 8

MAX_TAGS = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
# AWS's tag pattern is [\p{L}\p{Z}\p{N}_.:/=+\-@]; we keep to its ASCII part so that
# every STS endpoint and every downstream system accepts the value unchanged.
TAG_PATTERN = re.compile(r"[A-Za-z0-9 _.:/=+@-]*", re.ASCII)
_TAG_BAD = re.compile(r"[^A-Za-z0-9 _.:/=+@-]", re.ASCII)
RESERVED_TAG_PREFIXES = ("aws:", "nhi:", "ci:")
TRANSITIVE_TAG_KEYS = ("nhi:invocation", "nhi:step")


@dataclass(frozen=True)
class SessionTag:
    key: str
    value: str


def invocation_id(entropy: bytes) -> str:
    """A short id from random bytes: lowercase base32, safe in every name and tag."""
    if len(entropy) < 8:
        raise ValueError("an invocation id needs at least 8 random bytes")
    return base64.b32encode(entropy).decode().lower().rstrip("=")[:INVOCATION_ID_LENGTH]


def _ascii_fold(text: str) -> str:
    """'déploy' -> 'deploy': strip accents before replacing what is still not ASCII."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _session_part(text: str) -> str:
    return _SESSION_BAD.sub("-", _ascii_fold(text)).strip("-")


def _digest(*parts: str | None) -> str:
    joined = "\0".join(p or "" for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]


def session_name(step_id: str, context: CIContext, invocation: str) -> str:
    """`<step>.<run>-<attempt>.<invocation>`, always matching `[\\w+=,.@-]{2,64}`."""
    run = _session_part(context.run_id or "")[:RUN_PART_MAX]
    attempt = _session_part(context.run_attempt or "")[:8]
    run_part = f"{run}-{attempt}" if run and attempt else run
    tail = "." + ".".join(p for p in (run_part, invocation) if p)
    step = _session_part(step_id) or "step"
    name = step + tail
    if len(name) <= SESSION_NAME_MAX and step == step_id:
        return name
    # Replaced or cut: a hash of the original keeps distinct steps distinct.
    suffix = "-" + _digest(step_id, context.run_id, context.run_attempt)
    room = SESSION_NAME_MAX - len(tail) - len(suffix)
    return step[:room].rstrip("-") + suffix + tail


def _tag_text(text: str, limit: int) -> str:
    return _TAG_BAD.sub("_", _ascii_fold(text))[:limit]


def parse_tag(text: str) -> tuple[str, str]:
    """`KEY=VALUE` from --tag; the key must be non-empty."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"the tag {text[:60]!r} is not KEY=VALUE", "write tags as --tag team=web")
    return key.strip(), value


def session_tags(
    step_id: str,
    context: CIContext,
    invocation: str,
    extra: Sequence[tuple[str, str]] = (),
) -> tuple[SessionTag, ...]:
    """The chained hop's session tags: ours, the CI's context, then the user's."""
    ours: list[tuple[str, str | None]] = [
        ("nhi:invocation", invocation),
        ("nhi:step", step_id),
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

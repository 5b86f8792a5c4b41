"""Invocation ids and session names. Pure functions, no I/O.

Clouds validate session names with patterns their emulators do not check, so every name
produced here is valid by construction in the strictest of them (`[A-Za-z0-9_+=,.@-]{2,64}`):
invalid characters are replaced, never rejected, and long names are shortened
deterministically with a hash suffix.
"""

from __future__ import annotations

import base64
import re
import unicodedata

from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError

INVOCATION_ID_LENGTH = 12
SESSION_NAME_MAX = 64
SESSION_NAME_PATTERN = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}", re.ASCII)
_SESSION_BAD = re.compile(r"[^A-Za-z0-9_+=,.@-]+", re.ASCII)
RUN_PART_MAX = 24
HASH_LENGTH = 8


def invocation_id(entropy: bytes) -> str:
    """A short id from random bytes: lowercase base32, safe in every name and tag."""
    if len(entropy) < 8:
        raise ValueError("an invocation id needs at least 8 random bytes")
    return base64.b32encode(entropy).decode().lower().rstrip("=")[:INVOCATION_ID_LENGTH]


def ascii_fold(text: str) -> str:
    """'déploy' -> 'deploy': strip accents before replacing what is still not ASCII."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _session_part(text: str) -> str:
    return _SESSION_BAD.sub("-", ascii_fold(text)).strip("-")


def _digest(*parts: str | None) -> str:
    import hashlib  # noqa: PLC0415 - OpenSSL's bindings only for a name that must be cut

    joined = "\0".join(p or "" for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]


def session_name(
    step_id: str, context: CIContext, invocation: str, agent: str | None = None
) -> str:
    """`<step>.<run>-<attempt>.<invocation>`, always matching `[\\w+=,.@-]{2,64}`; outside a
    CI run, an agent's task is `<task>.<agent>.<invocation>`."""
    run = _session_part(context.run_id or "")[:RUN_PART_MAX]
    attempt = _session_part(context.run_attempt or "")[:8]
    run_part = f"{run}-{attempt}" if run and attempt else run
    if not run_part and agent:
        run_part = _session_part(agent)[:RUN_PART_MAX]
    tail = "." + ".".join(p for p in (run_part, invocation) if p)
    step = _session_part(step_id) or "step"
    name = step + tail
    if len(name) <= SESSION_NAME_MAX and step == step_id:
        return name
    # Replaced or cut: a hash of the original keeps distinct steps distinct.
    suffix = "-" + _digest(step_id, context.run_id, context.run_attempt)
    room = SESSION_NAME_MAX - len(tail) - len(suffix)
    return step[:room].rstrip("-") + suffix + tail


def parse_tag(text: str) -> tuple[str, str]:
    """`KEY=VALUE` from --tag; the key must be non-empty."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"the tag {text[:60]!r} is not KEY=VALUE", "write tags as --tag team=web")
    return key.strip(), value

"""Checks of single core option values. Each failure is a configuration error (exit 78)
that names the value and how to fix it; nothing here touches the network. Each broker checks
its own options in its own package."""

from __future__ import annotations

import urllib.parse

from nhi_invoke.errors import ConfigError

STEP_ID_MAX = 200


def step_id(value: str, source: str) -> str:
    if not value.strip():
        raise ConfigError(f"the step id from {source} is empty", "pass --step-id NAME")
    if len(value) > STEP_ID_MAX:
        raise ConfigError(
            f"the step id from {source} is {len(value)} characters long",
            f"use a step id of at most {STEP_ID_MAX} characters",
        )
    if any(not ch.isprintable() for ch in value):
        raise ConfigError(
            f"the step id from {source} contains a control character",
            "use letters, digits and -_. in step ids",
        )
    return value


def label(flag: str, value: str) -> str:
    """A name recorded as given (an agent, the user a task acts for): one printable line."""
    if not value.strip():
        raise ConfigError(f"{flag} is empty", f"pass {flag} a name, or leave it out")
    if len(value) > STEP_ID_MAX or any(not ch.isprintable() for ch in value):
        raise ConfigError(
            f"{flag} must be one printable line of at most {STEP_ID_MAX} characters",
            f"pass {flag} a short name such as an agent name or a user id",
        )
    return value


def endpoint(name: str, value: str) -> str:
    """An http(s) base URL without a trailing slash (used for test and private endpoints)."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(
            f"{name}={value[:120]!r} is not an http(s) base URL",
            f"set {name} to e.g. https://host:port",
        )
    return value.rstrip("/")


def kill_grace(value: int) -> int:
    if not 0 < value <= 300:
        raise ConfigError(
            f"NHI_KILL_GRACE={value} is outside 1-300 s",
            "give the command a few seconds to exit after a relayed signal",
        )
    return value


def timeout(value: int) -> int:
    if not 1 <= value <= 3600:
        raise ConfigError(
            f"--timeout {value} is outside 1-3600 s",
            "give the total time the exchanges may take, e.g. 60",
        )
    return value

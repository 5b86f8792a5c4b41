"""Run a CI agent's own command-line tool to request a token (Buildkite, CircleCI)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence

from nhi_invoke.errors import ConfigError, UnavailableError
from nhi_invoke.retry import Retryable, RetryPolicy, call_with_retries, remaining

TIMEOUT_SECONDS = 30


def request_token(
    argv: Sequence[str], environ: Mapping[str, str], policy: RetryPolicy, hint: str
) -> str:
    """Run `argv` and return the token it prints; a missing tool is a configuration error."""
    if shutil.which(argv[0], path=environ.get("PATH")) is None:
        raise ConfigError(f"'{argv[0]}' is not on PATH, so no OIDC token can be requested", hint)

    def attempt() -> str:
        try:
            done = subprocess.run(
                list(argv),
                env=dict(environ),
                capture_output=True,
                text=True,
                timeout=remaining(TIMEOUT_SECONDS),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise Retryable(f"'{argv[0]}' did not answer within {TIMEOUT_SECONDS} s", exc) from exc
        token = done.stdout.strip()
        if done.returncode != 0 or not token:
            # stderr may be long; its last line is the agent's reason.
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise Retryable(f"'{argv[0]}' exited {done.returncode}: {reason}")
        return token

    return call_with_retries(
        attempt,
        policy,
        on_give_up=lambda failure, tries: UnavailableError(
            f"could not get an OIDC token after {tries} tries: {failure.what}", hint
        ),
    )

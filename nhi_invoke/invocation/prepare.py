"""What was given + the environment -> the plan of one invocation, and what carrying it out
needs. No network, no token: `--dry-run` stops here."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nhi_invoke import naming
from nhi_invoke.brokers.interface import BrokerDeclaration
from nhi_invoke.ci import detect
from nhi_invoke.ci.interface import CIProvider, NoReporting, Reporting, TokenSource
from nhi_invoke.errors import ConfigError
from nhi_invoke.plan import Plan, build
from nhi_invoke.retry import RetryPolicy
from nhi_invoke.settings.resolve import resolve


@dataclass(frozen=True)
class RunRequest:
    """What an invocation was asked to do: option values by name (flags or keyword
    arguments), and the command."""

    given: Mapping[str, Any]
    command: tuple[str, ...]


@dataclass(frozen=True)
class Prepared:
    """A plan plus what carrying it out needs that a plan must not hold (the environment)."""

    plan: Plan
    declarations: tuple[BrokerDeclaration[Any], ...]  # one per plan.brokers, in order
    token_source: TokenSource
    environ: Mapping[str, str]
    retry_policy: RetryPolicy
    reporting: Reporting


def prepare(
    request: RunRequest,
    environ: Mapping[str, str],
    cwd: str,
    *,
    policy: RetryPolicy | None = None,
    entropy: Callable[[int], bytes] = os.urandom,
    providers: Sequence[CIProvider] | None = None,
    token: Callable[[str], str] | None = None,
) -> Prepared:
    """Resolve settings, detect the CI and decide the plan. No network, no token.

    `token` (the Python API's) supplies OIDC tokens by audience instead of any other source.
    """
    context, provider = detect.detect(environ, providers)
    settings = resolve(request.given, environ, context, cwd)
    if token is not None and (settings.token_file or settings.token_env or settings.token_command):
        raise ConfigError(
            "token= and another token source are both given",
            "pass only one of token=, token_file=, token_env= and token_command= (or unset "
            "NHI_TOKEN_FILE/NHI_TOKEN_ENV/NHI_TOKEN_COMMAND)",
        )
    policy = policy or RetryPolicy(total_seconds=settings.timeout_seconds)
    source = detect.token_source(
        environ,
        provider,
        token_file=settings.token_file,
        token_env=settings.token_env,
        policy=policy,
        token_command=settings.token_command,
        token=token,
    )
    plan = build(
        settings,
        context,
        invocation_id=naming.invocation_id(entropy(10)),
        command=request.command,
        token_source=source.description,
        inherited=tuple(environ),
        extra_token_variables=(settings.token_env,) if settings.token_env else (),
    )
    return Prepared(
        plan=plan,
        declarations=tuple(c.declaration for c in settings.brokers),
        token_source=source,
        environ=environ,
        retry_policy=policy,
        reporting=provider.reporting(environ) if provider is not None else NoReporting(),
    )

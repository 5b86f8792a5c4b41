"""Find the CI we run on, and the token source this invocation will use.

A CI provider is one module and one line below. They are asked in order and imported one at
a time, so a step on the first one (GitHub Actions) loads no other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping

from nhi_invoke.ci.explicit import (
    CallableTokenSource,
    CommandTokenSource,
    EnvTokenSource,
    FileTokenSource,
    NoTokenSource,
    ProviderTokenSource,
)
from nhi_invoke.ci.interface import LOCAL, CIContext, CIProvider, TokenSource
from nhi_invoke.retry import RetryPolicy

PROVIDERS = (
    "nhi_invoke.ci.github:GitHubActions",
    "nhi_invoke.ci.gitlab:GitLabCI",
    "nhi_invoke.ci.circleci:CircleCI",
    "nhi_invoke.ci.buildkite:Buildkite",
    "nhi_invoke.ci.bitbucket:Bitbucket",
)


def known() -> Iterator[CIProvider]:
    """Every CI provider, in the order they are asked, each imported when it is reached."""
    for entry in PROVIDERS:
        module, _, name = entry.partition(":")
        provider: CIProvider = getattr(importlib.import_module(module), name)()
        yield provider


def detect(
    environ: Mapping[str, str], providers: Iterable[CIProvider] | None = None
) -> tuple[CIContext, CIProvider | None]:
    """The CI running this process and its context; the local context when none is found."""
    for provider in known() if providers is None else providers:
        context = provider.context(environ)
        if context is not None:
            return context, provider
    return LOCAL, None


def token_source(
    environ: Mapping[str, str],
    provider: CIProvider | None,
    *,
    token_file: str | None,
    token_env: str | None,
    policy: RetryPolicy,
    token_command: tuple[str, ...] | None = None,
    token: Callable[[str], str] | None = None,
) -> TokenSource:
    """An explicit token beats the ambient CI; no CI and nothing explicit fails on use."""
    if token is not None:
        return CallableTokenSource(token)
    if token_command is not None:
        return CommandTokenSource(token_command, environ, policy)
    if token_file is not None:
        return FileTokenSource(token_file)
    if token_env is not None:
        return EnvTokenSource(token_env, environ)
    if provider is not None:
        return ProviderTokenSource(provider, environ, policy)
    return NoTokenSource()

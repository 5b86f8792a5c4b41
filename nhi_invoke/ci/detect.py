"""Find the CI we run on, and the token source this invocation will use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nhi_invoke.ci.bitbucket import Bitbucket
from nhi_invoke.ci.buildkite import Buildkite
from nhi_invoke.ci.circleci import CircleCI
from nhi_invoke.ci.explicit import (
    EnvTokenSource,
    FileTokenSource,
    NoTokenSource,
    ProviderTokenSource,
)
from nhi_invoke.ci.github import GitHubActions
from nhi_invoke.ci.gitlab import GitLabCI
from nhi_invoke.ci.interface import LOCAL, CIContext, CIProvider, TokenSource
from nhi_invoke.retry import RetryPolicy

PROVIDERS: tuple[CIProvider, ...] = (
    GitHubActions(),
    GitLabCI(),
    CircleCI(),
    Buildkite(),
    Bitbucket(),
)


def detect(
    environ: Mapping[str, str], providers: Sequence[CIProvider] = PROVIDERS
) -> tuple[CIContext, CIProvider | None]:
    """The CI running this process and its context; the local context when none is found."""
    for provider in providers:
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
) -> TokenSource:
    """An explicit token beats the ambient CI; no CI and nothing explicit fails on use."""
    if token_file is not None:
        return FileTokenSource(token_file)
    if token_env is not None:
        return EnvTokenSource(token_env, environ)
    if provider is not None:
        return ProviderTokenSource(provider, environ, policy)
    return NoTokenSource()

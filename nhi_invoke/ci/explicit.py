"""Token sources: the ambient CI's endpoint, or a token file / variable named by the user."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from nhi_invoke.ci.interface import CIProvider, env_value
from nhi_invoke.errors import ConfigError
from nhi_invoke.retry import RetryPolicy

MAX_TOKEN_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProviderTokenSource:
    """Ask the CI for a token, per audience, each time."""

    provider: CIProvider
    environ: Mapping[str, str]
    policy: RetryPolicy

    @property
    def description(self) -> str:
        return f"{self.provider.name} OIDC"

    def fetch(self, audience: str) -> str:
        return self.provider.fetch_token(self.environ, audience, self.policy)


@dataclass(frozen=True)
class FileTokenSource:
    """A token file (`--token-file`); read again for a fresh token, as rotated files change."""

    path: str

    @property
    def description(self) -> str:
        return f"token file {self.path}"

    def fetch(self, audience: str) -> str:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as handle:
                raw = handle.read(MAX_TOKEN_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(
                f"cannot read the token file {self.path}: {exc.strerror}",
                "pass --token-file the path of a readable file holding the OIDC token",
            ) from exc
        if len(raw) > MAX_TOKEN_FILE_BYTES:
            raise ConfigError(
                f"the token file {self.path} is larger than {MAX_TOKEN_FILE_BYTES} bytes",
                "the file must hold only the OIDC token",
            )
        token = raw.decode("utf-8", errors="replace").strip()
        if not token:
            raise ConfigError(f"the token file {self.path} is empty", "write the token into it")
        return token


@dataclass(frozen=True)
class EnvTokenSource:
    """A token held in an environment variable (`--token-env NAME`)."""

    name: str
    environ: Mapping[str, str]

    @property
    def description(self) -> str:
        return f"variable {self.name}"

    def fetch(self, audience: str) -> str:
        token = env_value(self.environ, self.name)
        if token is None:
            raise ConfigError(
                f"the variable {self.name} named by --token-env is not set",
                f"export the OIDC token as {self.name}, or name the variable that holds it",
            )
        return token.strip()


@dataclass(frozen=True)
class NoTokenSource:
    """Not on a known CI and no token named: the fix is to name one."""

    @property
    def description(self) -> str:
        return "none"

    def fetch(self, audience: str) -> str:
        raise ConfigError(
            "no OIDC token available: not running on a supported CI and no token given",
            "run inside GitHub Actions, GitLab CI, CircleCI, Buildkite or Bitbucket, or pass "
            "--token-file/--token-env (try 'nhi-invoke sandbox' locally)",
        )

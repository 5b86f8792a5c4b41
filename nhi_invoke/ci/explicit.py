"""Token sources: the ambient CI's endpoint, or a token file, variable, command or (from the
Python API) callable named by the user. Each is asked again for a fresh token."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nhi_invoke.ci.interface import CIProvider, env_value
from nhi_invoke.errors import ConfigError, NhiError, UnavailableError
from nhi_invoke.retry import RetryPolicy

# Tells a token command (or callable) which audience the token is for.
AUDIENCE_VARIABLE = "NHI_TOKEN_AUDIENCE"

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
class CommandTokenSource:
    """A command that prints a token (`--token-command`), run for every token needed: a
    helper that reads a rotating token, asks a local agent, or a workload API."""

    argv: tuple[str, ...]
    environ: Mapping[str, str]
    policy: RetryPolicy

    @property
    def description(self) -> str:
        # The program only: arguments may hold what should not be recorded.
        return f"token command {os.path.basename(self.argv[0])}"

    def fetch(self, audience: str) -> str:
        from nhi_invoke.ci.agent_cli import request_token  # noqa: PLC0415

        # The command needs the audience, not the ledger's key.
        environ = {k: v for k, v in self.environ.items() if k != "NHI_LEDGER_KEY"}
        return request_token(
            self.argv,
            environ | {AUDIENCE_VARIABLE: audience},
            self.policy,
            "check that --token-command prints one OIDC token on stdout and exits 0",
        )


@dataclass(frozen=True)
class CallableTokenSource:
    """A Python callable (`token=` in the API), called with the audience for every token."""

    supply: Callable[[str], str]

    @property
    def description(self) -> str:
        name = getattr(self.supply, "__qualname__", type(self.supply).__name__)
        return f"python callable {name}"

    def fetch(self, audience: str) -> str:
        try:
            token = self.supply(audience)
        except NhiError:
            raise
        except Exception as exc:
            # Its message stays in the chained cause: it may quote what it was handling.
            raise UnavailableError(
                f"the token callable raised {type(exc).__name__}",
                "make token= return an OIDC token for the audience it is given",
            ) from exc
        if not isinstance(token, str) or not token.strip():
            raise ConfigError(
                f"the token callable returned {type(token).__name__}, not a token",
                "make token= return the OIDC token as a non-empty string",
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
            "--token-file/--token-env/--token-command (in Python: token_file=, token_command= "
            "or token=; try 'nhi-invoke sandbox' locally)",
        )

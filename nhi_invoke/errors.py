"""One error family: every failure nhi-invoke reports carries its exit code and a fix.

The CLI renders these once, as one line, in `cli/app.py`. Third-party exceptions are wrapped
at the boundary where they occur (`raise ConfigError(...) from exc`).
"""

from __future__ import annotations

# Exit codes of the SPEC; the command's own code is passed through untouched.
EXIT_USAGE = 2
EXIT_TOKEN = 65
EXIT_UNAVAILABLE = 69
EXIT_IO = 74  # EX_IOERR
EXIT_REFUSED = 77
EXIT_CONFIG = 78


class NhiError(Exception):
    """A failure of nhi-invoke itself: what went wrong, how to fix it, and the exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and its fix on a single line, with no control characters."""
        text = self.message if not self.hint else f"{self.message}; fix: {self.hint}"
        return "".join(ch if ch.isprintable() else "?" for ch in text)

    def __str__(self) -> str:
        return self.one_line()


class UsageError(NhiError):
    """Bad flags or arguments."""

    exit_code = EXIT_USAGE


class TokenError(NhiError):
    """The OIDC token is malformed, expired, not yet valid, or for another audience."""

    exit_code = EXIT_TOKEN


class UnavailableError(NhiError):
    """The CI token endpoint or the cloud could not be reached after retries."""

    exit_code = EXIT_UNAVAILABLE


class RefusedError(NhiError):
    """The cloud refused the exchange (access denied, trust policy)."""

    exit_code = EXIT_REFUSED


class ConfigError(NhiError):
    """A missing or invalid option, no token available, or the id-token permission missing."""

    exit_code = EXIT_CONFIG


class RecordError(NhiError):
    """What an invocation leaves behind could not be written: a ledger line (disk full, an
    I/O error, a ledger lost once the command ran) or the step's outputs. Every credential
    was still ended."""

    exit_code = EXIT_IO


class Interrupted(NhiError):
    """nhi-invoke received a terminating signal before the command started."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum} before the command started")
        self.signum = signum
        self.exit_code = 128 + signum


class CommandNotFound(NhiError):
    """The command to run does not exist (checked before anything is minted)."""

    exit_code = 127


class CommandNotExecutable(NhiError):
    """The command exists but cannot be executed."""

    exit_code = 126


class InvocationClosed(NhiError):
    """The Python API: the invocation has ended and its credentials were released."""

"""The ledger's records of how a command and an invocation end (`command.exited`,
`invocation.finished`, `error`); records.py holds the others and reads them all back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class CommandExited(NamedTuple):
    """The command ended (or, in the Python API, the block the credentials served)."""

    exit_code: int
    signal: int | None  # the signal that killed the command, if one did
    duration_ms: int
    # The Python API's blocks: how the block ended (return, exception, cancelled, closed,
    # interpreter-exit) and, for an exception, its class name (never its message).
    ended_by: str | None = None
    exception: str | None = None

    @property
    def event(self) -> str:
        return "command.exited"

    def fields(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "exit_code": self.exit_code,
            "signal": self.signal,
            "duration_ms": self.duration_ms,
        }
        if self.ended_by is not None:
            found["ended_by"] = self.ended_by
        if self.exception is not None:
            found["exception"] = self.exception
        return found

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> CommandExited:
        return cls(
            int(fields.get("exit_code", 0)),
            fields.get("signal"),
            int(fields.get("duration_ms", 0)),
            ended_by=fields.get("ended_by"),
            exception=fields.get("exception"),
        )


class InvocationFinished(NamedTuple):
    exit_code: int | None  # None: finished by `nhi-invoke revoke`, after a crash
    signal: int | None = None  # a signal nhi-invoke received
    retries: int | None = None
    duration_ms: int | None = None
    recovered_by: str | None = None

    @property
    def event(self) -> str:
        return "invocation.finished"

    def fields(self) -> dict[str, Any]:
        if self.recovered_by is not None:
            return {"exit_code": self.exit_code, "recovered": True, "by": self.recovered_by}
        return {
            "exit_code": self.exit_code,
            "signal": self.signal,
            "retries": self.retries,
            "duration_ms": self.duration_ms,
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> InvocationFinished:
        return cls(
            exit_code=fields.get("exit_code"),
            signal=fields.get("signal"),
            retries=fields.get("retries"),
            duration_ms=fields.get("duration_ms"),
            recovered_by=fields.get("by") if fields.get("recovered") else None,
        )


class ErrorRecorded(NamedTuple):
    exit_code: int
    error: str  # the error's class name
    message: str  # its one line (never a secret)

    @property
    def event(self) -> str:
        return "error"

    def fields(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "error": self.error, "message": self.message}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> ErrorRecorded:
        return cls(
            int(fields.get("exit_code", 0)),
            str(fields.get("error", "")),
            str(fields.get("message", "")),
        )

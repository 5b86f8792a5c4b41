"""The task an invocation serves, as its caller names it: a task or case id, the agent, the user
it acts for. Recorded and put into names and tags; nhi-invoke does not verify it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskContext:
    """Who asked for an invocation, outside the CI's own context (all optional)."""

    task_id: str | None = None
    agent: str | None = None
    on_behalf_of: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The known values, for the plan and the ledger's `invocation.started`."""
        found = {"id": self.task_id, "agent": self.agent, "on_behalf_of": self.on_behalf_of}
        return {k: v for k, v in found.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TaskContext | None:
        """Read back from the ledger; None when nothing was recorded."""
        if not isinstance(data, Mapping):
            return None

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        found = cls(text("id"), text("agent"), text("on_behalf_of"))
        return found if found != cls() else None

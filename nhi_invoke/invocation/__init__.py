"""One invocation, from plan to ledger: the flow (open, close), the child, --serve, recovery.

`nhi_invoke.invocation` is also the Python API's entry point, `nhi_invoke.invocation(...)`
(docs/agents.md): importing this package binds its name on `nhi_invoke`, so the package itself
answers that call, handing it to `nhi_invoke.tasks.api.invocation` (imported then, not before).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nhi_invoke.tasks.api import Invocation


class _Package(types.ModuleType):
    """This package, callable as the API's `invocation()`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Invocation:
        from nhi_invoke.tasks.api import invocation  # noqa: PLC0415

        return invocation(*args, **kwargs)


sys.modules[__name__].__class__ = _Package

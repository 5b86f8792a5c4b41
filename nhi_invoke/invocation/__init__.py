"""One invocation, from plan to ledger: the flow (open, close), the child, --serve, recovery.

`nhi_invoke.invocation` is also the Python API's entry point, `nhi_invoke.invocation(...)`
(docs/agents.md). Importing this package binds its name on `nhi_invoke`, so the package itself
answers that call: it hands it to `nhi_invoke.tasks.api.invocation` (imported then, not
before). The name stays bound to the package, so that every form of importing its modules
keeps working.
"""

from __future__ import annotations

import inspect
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

    @property
    def __signature__(self) -> inspect.Signature:
        """The API function's, for help() and editors."""
        from nhi_invoke.tasks.api import invocation  # noqa: PLC0415

        return inspect.signature(invocation)


sys.modules[__name__].__class__ = _Package

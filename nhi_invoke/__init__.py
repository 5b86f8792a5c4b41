"""nhi-invoke: one short-lived cloud identity per pipeline step, and per agent task.

The Python API (`invocation`, `with_invocation`, `current_invocation`, `Invocation`) is
imported on first use (PEP 562), so that `--version` and the CLI never pay for it.
`nhi_invoke.invocation` is the `nhi_invoke/invocation/` package, callable as the API's
`invocation()`.
"""

from __future__ import annotations

# `typing` only for the checker: `nhi-invoke --version` does not pay for importing it.
TYPE_CHECKING = False
__version__ = "0.1.0"
# Where nhi-invoke installs from: there is no release on PyPI, and the name there is not ours.
SOURCE = "git+https://github.com/nhi-invoke/nhi-invoke"


def install_hint(extra: str) -> str:
    """How to install nhi-invoke with an optional extra (for an error's fix)."""
    return f"pip install 'nhi-invoke[{extra}] @ {SOURCE}' (or '.[{extra}]' in a checkout)"


__all__ = [
    "Invocation",
    "InvocationSettings",
    "NhiError",
    "__version__",
    "current_invocation",
    "invocation",
    "with_invocation",
]

if TYPE_CHECKING:
    from typing import Any

    from nhi_invoke.errors import NhiError
    from nhi_invoke.tasks.api import Invocation, current_invocation, invocation, with_invocation
    from nhi_invoke.tasks.keywords import InvocationSettings

_LAZY = {
    "Invocation": "nhi_invoke.tasks.api",
    "current_invocation": "nhi_invoke.tasks.api",
    "with_invocation": "nhi_invoke.tasks.api",
    "InvocationSettings": "nhi_invoke.tasks.keywords",
    "NhiError": "nhi_invoke.errors",
}


def __getattr__(name: str) -> Any:
    import importlib  # noqa: PLC0415

    if name == "invocation":
        # The package of that name is callable as the API's entry point (see its docstring).
        return importlib.import_module("nhi_invoke.invocation")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nhi_invoke' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

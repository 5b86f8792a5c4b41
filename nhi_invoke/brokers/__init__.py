"""The registry of credential brokers: name -> the module that declares it.

Adding a broker is one package (`nhi_invoke/brokers/<name>/`, see `interface.py` and
docs/architecture.md) and one line below. Only declarations are loaded here (options,
settings, plans: no SDK); a broker's runtime is imported when a run uses it.

Brokers from outside the package (a plug-in, or a test's fake) are named explicitly by
`NHI_BROKER_MODULES`: comma-separated modules, each defining `DECLARATION`. They are not
discovered through packaging entry points: scanning installed distributions costs every run
tens of milliseconds, and a security tool should load code only where its operator said so.
Like the built-ins they can come from the environment only, never from nhi-invoke.toml.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from nhi_invoke.errors import ConfigError

if TYPE_CHECKING:
    from nhi_invoke.brokers.interface import BrokerDeclaration, CredentialBroker

BUILTIN: Mapping[str, str] = {
    "aws": "nhi_invoke.brokers.aws.declaration",
    "gcp": "nhi_invoke.brokers.gcp.declaration",
    "azure": "nhi_invoke.brokers.azure.declaration",
    "vault": "nhi_invoke.brokers.vault.declaration",
}
EXTRA_VARIABLE = "NHI_BROKER_MODULES"


@cache
def _load(module: str) -> BrokerDeclaration[Any]:
    try:
        declaration = importlib.import_module(module).DECLARATION
    except ImportError as exc:
        raise ConfigError(
            f"{EXTRA_VARIABLE} names the module {module!r}, which cannot be imported "
            f"({type(exc).__name__}: {exc})",
            f"install it, or remove it from {EXTRA_VARIABLE}",
        ) from exc
    except AttributeError as exc:
        raise ConfigError(
            f"the broker module {module!r} defines no DECLARATION",
            "define DECLARATION = <your BrokerDeclaration>() in it",
        ) from exc
    return declaration  # type: ignore[no-any-return]


@cache
def _declarations(extra: tuple[str, ...]) -> tuple[BrokerDeclaration[Any], ...]:
    found = [_load(module) for module in (*BUILTIN.values(), *extra)]
    names = [d.name for d in found]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ConfigError(
            f"two brokers are named {duplicate!r}", f"give each module in {EXTRA_VARIABLE} its own"
        )
    return tuple(found)


def declarations(environ: Mapping[str, str]) -> tuple[BrokerDeclaration[Any], ...]:
    """Every broker this environment knows: the built-ins, then those it names."""
    extra = tuple(m.strip() for m in environ.get(EXTRA_VARIABLE, "").split(",") if m.strip())
    return _declarations(extra)


def declaration(name: str, environ: Mapping[str, str]) -> BrokerDeclaration[Any] | None:
    return next((d for d in declarations(environ) if d.name == name), None)


def runtime(declared: BrokerDeclaration[Any]) -> type[CredentialBroker]:
    """The broker's runtime class, imported now (with its SDK, if it needs one)."""
    module, _, attribute = declared.runtime.partition(":")
    return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]

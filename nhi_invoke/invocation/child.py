"""The child's environment: each broker adds its credentials and strips the identities its
tools would otherwise find; the core adds the invocation's names and strips the CI's token
variables. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from nhi_invoke.brokers.grants import Grant
from nhi_invoke.brokers.interface import BrokerPlan, ChildVariables

ACTIVE_VARIABLE = "NHI_INVOKE_ACTIVE"
ALWAYS_SET = ("NHI_INVOCATION_ID", "NHI_STEP_ID", ACTIVE_VARIABLE)
# With --serve, the command's SDKs must reach the loopback endpoints directly, never through
# a proxy (which would see the endpoints' secret path): both spellings, as the SDKs read both.
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
LOOPBACK = ("127.0.0.1", "localhost")
# The ledger's HMAC key (and where it is read from): a command holding it could forge
# ledger lines.
ALWAYS_REMOVED = ("NHI_LEDGER_KEY", "NHI_LEDGER_KEY_FILE")


def names_set(plans: Sequence[BrokerPlan], *, served: bool = False) -> tuple[str, ...]:
    """The variables the child will be given, for the plan."""
    names = [
        name for p in plans for name in p.child_variables().names(served=served or p.always_served)
    ]
    endpoint = served or any(p.always_served for p in plans)
    return (*names, *(NO_PROXY_VARIABLES if endpoint else ()), *ALWAYS_SET)


def exempt_loopback(env: dict[str, str]) -> None:
    """Add the loopback addresses to the child's `NO_PROXY`/`no_proxy` (both when neither is
    set; each that is set keeps its entries)."""
    present = [name for name in NO_PROXY_VARIABLES if env.get(name, "").strip()]
    for name in present or NO_PROXY_VARIABLES:
        entries = [e.strip() for e in env.get(name, "").split(",") if e.strip()]
        if entries == ["*"]:
            continue  # already exempts every host
        entries += [host for host in LOOPBACK if host not in entries]
        env[name] = ",".join(entries)


def _stripped(
    name: str, variables: Sequence[ChildVariables], token_variables: Iterable[str]
) -> bool:
    return (
        name in token_variables or name in ALWAYS_REMOVED or any(v.strips(name) for v in variables)
    )


def removed_names(
    inherited: Iterable[str], plans: Sequence[BrokerPlan], token_variables: Iterable[str]
) -> list[str]:
    """The inherited variables the child will not see (names only, for the plan and logs)."""
    variables = [p.child_variables() for p in plans]
    stripped = tuple(token_variables)
    set_by_us = {name for v in variables for name in v.set}
    return sorted(n for n in inherited if _stripped(n, variables, stripped) and n not in set_by_us)


def build(
    environ: Mapping[str, str],
    grants: Mapping[str, Sequence[Grant]],
    plans: Sequence[BrokerPlan],
    *,
    invocation_id: str,
    step_id: str,
    token_variables: Iterable[str],
    served: Mapping[str, Mapping[str, str]] | None = None,
    configured: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, str]:
    """The parent's environment, cleaned of other identities, plus this invocation's: each
    broker's credentials (`grants`, by broker name) or, for a broker that is served, where to
    fetch them (`served`, by broker name), and where its tools' private configuration is
    (`configured`, by broker name)."""
    variables = [p.child_variables() for p in plans]
    stripped = tuple(token_variables)
    env = {k: v for k, v in environ.items() if not _stripped(k, variables, stripped)}
    for plan in plans:
        env.update(
            plan.child_environment(
                grants.get(plan.broker, ()),
                served.get(plan.broker) if served is not None else None,
            )
        )
    for configuration in (configured or {}).values():
        env.update(configuration)
    if served is not None:
        exempt_loopback(env)
    env.update(
        {"NHI_INVOCATION_ID": invocation_id, "NHI_STEP_ID": step_id, ACTIVE_VARIABLE: invocation_id}
    )
    return env

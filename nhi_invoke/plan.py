"""Settings + CI context -> the plan of one invocation. Pure; `--dry-run` renders it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nhi_invoke.brokers.interface import BrokerPlan, PlanContext
from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.figures import duration
from nhi_invoke.invocation import child
from nhi_invoke.settings.resolve import Settings
from nhi_invoke.tasks.context import TaskContext

if TYPE_CHECKING:
    from nhi_invoke.net.environment import CaBundle


@dataclass(frozen=True)
class Plan:
    """Everything one invocation will do, decided before anything is done."""

    invocation_id: str
    step_id: str
    step_source: str
    ci: CIContext
    token_source: str
    brokers: tuple[BrokerPlan, ...]
    command: tuple[str, ...]
    ledger_path: str
    keep_oidc_env: bool
    env_set: tuple[str, ...]
    env_removed: tuple[str, ...]
    # Variables that can mint OIDC tokens; the child does not see them (--keep-oidc-env: none).
    stripped_variables: tuple[str, ...]
    kill_grace_seconds: float
    serve: bool = False
    refresh_margin_seconds: int = 300
    ca_bundle: CaBundle | None = None  # given to nhi-invoke for every request of its own
    warnings: tuple[str, ...] = field(default=())
    # Where the ledger's HMAC key is read from (a path or fd:N; None: NHI_LEDGER_KEY or the
    # keyring, if any). Read when the invocation starts, never by the plan.
    ledger_key_file: str | None = None
    # Publish the invocation's outputs as the CI step's once the command has ended.
    step_outputs: bool = False
    task: TaskContext | None = None

    @property
    def broker_names(self) -> tuple[str, ...]:
        return tuple(b.broker for b in self.brokers)

    def broker(self, name: str) -> BrokerPlan | None:
        return next((b for b in self.brokers if b.broker == name), None)

    @property
    def endings(self) -> tuple[tuple[str, str], ...]:
        """Each credential this invocation will issue, and how it will end."""
        return tuple(ending for b in self.brokers for ending in b.endings())

    def as_dict(self, known: tuple[str, ...]) -> dict[str, Any]:
        """The plan as plain data for `--dry-run --json`: names and decisions, never a secret
        (it holds none). Every broker in `known` has its key, null when it is not used."""
        by_name: Mapping[str, BrokerPlan] = {b.broker: b for b in self.brokers}
        brokers = {
            name: (by_name[name].as_dict() if name in by_name else None)
            for name in (*known, *(n for n in by_name if n not in known))
        }
        return {
            "invocation_id": self.invocation_id,
            "step_id": self.step_id,
            "step_source": self.step_source,
            "task": self.task.as_dict() if self.task is not None else None,
            "ci": self.ci.as_dict(),
            "token_source": self.token_source,
            **brokers,
            "command": list(self.command),
            "ledger_path": self.ledger_path,
            "ledger_key_file": self.ledger_key_file,
            "keep_oidc_env": self.keep_oidc_env,
            "env_set": list(self.env_set),
            "env_removed": list(self.env_removed),
            "stripped_variables": list(self.stripped_variables),
            "kill_grace_seconds": self.kill_grace_seconds,
            "serve": self.serve,
            "step_outputs": self.step_outputs,
            "refresh_margin_seconds": self.refresh_margin_seconds,
            "ca_bundle": self.ca_bundle.path if self.ca_bundle else None,
            "warnings": list(self.warnings),
            "clouds": list(self.broker_names),
            "endings": [{"credential": c, "ends": e} for c, e in self.endings],
        }


def _warnings(
    settings: Settings,
    context: CIContext,
    plans: tuple[BrokerPlan, ...],
    inherited: tuple[str, ...],
) -> list[str]:
    warnings = list(settings.warnings)
    for plan in plans:
        warnings += plan.warnings()
    shortest = min(p.credential_lifetime() for p in plans)
    expected = settings.expect_duration_seconds
    if expected is not None and not settings.serve and expected > shortest:
        warnings.append(
            f"the command is expected to run {duration(expected)}, longer than its "
            f"credentials live ({duration(shortest)}): add --serve so they are refreshed while "
            "it runs"
        )
    if context.provider == "local":
        warnings.append(
            "not running on a known CI: the token must come from --token-file/--token-env/"
            "--token-command"
        )
    if child.ACTIVE_VARIABLE in inherited:
        warnings.append("nhi-invoke is already active in this environment (nested invocation)")
    if settings.keep_oidc_env:
        warnings.append(
            "--keep-oidc-env: the command can request OIDC tokens and mint identities of its own"
        )
    return warnings


def _no_shared_variable(plans: tuple[BrokerPlan, ...], serve: bool) -> None:
    """One broker may not set a variable another broker of the step sets or takes away (a
    secret read into the variable of another broker's key): whichever wrote last would win,
    and the step's own identity could be replaced."""
    for plan in plans:
        mine = plan.child_variables().names(served=serve or plan.always_served)
        for other in plans:
            if other is plan:
                continue
            theirs = other.child_variables()
            taken = [
                n
                for n in mine
                if n in theirs.names(served=serve or other.always_served) or theirs.strips(n)
            ]
            if taken:
                raise ConfigError(
                    f"{taken[0]} would be set for the command by both {plan.broker} and "
                    f"{other.broker}: one would replace the other's credential",
                    "read the value into another variable (the name after '|' in a secret "
                    "spec is the step's choice)",
                )


def build(
    settings: Settings,
    context: CIContext,
    *,
    invocation_id: str,
    command: tuple[str, ...],
    token_source: str,
    inherited: tuple[str, ...],
    extra_token_variables: tuple[str, ...] = (),
) -> Plan:
    """Decide names, tags, hops and the child's environment for one invocation.

    `inherited` is the names of the parent's environment variables (names only: the plan
    never holds a value).
    """
    plan_context = PlanContext(
        invocation_id, settings.step_id, context, settings.serve, task=settings.task
    )
    plans = tuple(c.declaration.plan(c.settings, plan_context) for c in settings.brokers)
    _no_shared_variable(plans, settings.serve)
    served = [p for p in plans if settings.serve or p.always_served]
    shortest = min((p.credential_lifetime() for p in served), default=0)
    margin = settings.refresh_margin_seconds
    if served and not 0 <= margin < shortest:
        raise ConfigError(
            f"--refresh-margin {margin} is not shorter than the served credentials' lifetime "
            f"({duration(shortest)}): every request would mint a new credential",
            "use a margin of a few minutes, shorter than the credentials' lifetime",
        )
    token_variables = (
        () if settings.keep_oidc_env else (*context.token_variables, *extra_token_variables)
    )
    return Plan(
        invocation_id=invocation_id,
        step_id=settings.step_id,
        step_source=settings.step_source,
        ci=context,
        token_source=token_source,
        brokers=plans,
        command=command,
        ledger_path=settings.ledger_path,
        ledger_key_file=settings.ledger_key_file,
        keep_oidc_env=settings.keep_oidc_env,
        env_set=child.names_set(plans, served=settings.serve),
        env_removed=tuple(child.removed_names(inherited, plans, token_variables)),
        stripped_variables=token_variables,
        kill_grace_seconds=settings.kill_grace_seconds,
        serve=settings.serve,
        step_outputs=settings.step_outputs,
        refresh_margin_seconds=margin,
        ca_bundle=settings.ca_bundle,
        warnings=tuple(_warnings(settings, context, plans, inherited)),
        task=settings.task,
    )

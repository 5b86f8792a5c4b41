"""The contract of a credential broker: one package per credential source (a cloud, a
secrets broker), in two parts.

- A *declaration* (`BrokerDeclaration`), importable without any SDK: the broker's options,
  its settings, its part of the plan (`BrokerPlan`: names, rows, endings, the child's
  variables), and how to rebuild that plan from the ledger after a crash. `--help` and
  `--dry-run` load only this part.
- A *runtime* (`CredentialBroker`), imported only when a run uses the broker: it issues
  grants, releases each one, recovers them after a crash, and may serve them under `--serve`
  (an `Endpoint`, see `serving.py`).

`nhi_invoke/brokers/__init__.py` maps names to declarations; nothing outside a broker's
package knows what a broker does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from nhi_invoke.brokers.grants import Grant, GrantRecorder, Release, TokenSupplier
from nhi_invoke.ci.interface import CIContext

if TYPE_CHECKING:
    from pathlib import Path

    from nhi_invoke.brokers.serving import CurrentGrant, Endpoint
    from nhi_invoke.retry import RetryOutcome, RetryPolicy
    from nhi_invoke.settings.option import Option, OptionValues
    from nhi_invoke.tasks.context import TaskContext

S = TypeVar("S")


@dataclass(frozen=True)
class PlanContext:
    """What a broker's plan may depend on besides its own settings."""

    invocation_id: str
    step_id: str
    ci: CIContext
    serve: bool = False
    task: TaskContext | None = None  # an agent's task: its agent and user go into names/tags


@dataclass(frozen=True)
class ChildVariables:
    """The variables one broker's credentials occupy in the child's environment (names)."""

    set: tuple[str, ...]  # given to the child with static credentials
    served: tuple[str, ...] = ()  # given instead with --serve
    # Anything that would let the child's SDK find another identity than the one handed over.
    removed: tuple[str, ...] = ()
    removed_prefixes: tuple[str, ...] = ()

    def names(self, *, served: bool) -> tuple[str, ...]:
        return self.served if served else self.set

    def strips(self, name: str) -> bool:
        """Whether an inherited variable of this name is taken out of the child's view."""
        return (
            name in self.set
            or name in self.removed
            or (bool(self.removed_prefixes) and name.startswith(self.removed_prefixes))
        )


class BrokerPlan(ABC):
    """One broker's part of the plan, decided before anything is done. Holds no secret."""

    broker: ClassVar[str]  # the registry name
    audience: str  # the OIDC token audience this broker's exchange needs
    revocation: str  # how the command's credential will end: "expire" or a revocation method
    # Served whether or not --serve is given: for a source whose SDKs find credentials only
    # through an endpoint (no variable holds a token), the endpoint is how the command gets
    # them. Its `child_variables().served` are then what the child is always given.
    always_served: ClassVar[bool] = False

    @abstractmethod
    def credential_lifetime(self) -> int:
        """How long the command's credential lives once issued, in seconds."""

    @abstractmethod
    def child_variables(self) -> ChildVariables:
        """The names this broker sets in, and strips from, the child's environment."""

    @abstractmethod
    def child_environment(
        self, grants: Sequence[Grant], served: Mapping[str, str] | None
    ) -> dict[str, str]:
        """What the child gets: the grants' variables (or, with --serve, the endpoint's),
        plus whatever else this broker's tools need (a region, a project)."""

    @abstractmethod
    def endings(self) -> tuple[tuple[str, str], ...]:
        """Each credential this broker will issue, and how it will end."""

    def warnings(self) -> tuple[str, ...]:
        """What the user should know before running this plan."""
        return ()

    @abstractmethod
    def rows(self) -> list[tuple[str, str]]:
        """The plan's rows in `--dry-run`'s table."""

    @abstractmethod
    def as_dict(self) -> dict[str, Any]:
        """The plan for `--dry-run --json`."""

    @abstractmethod
    def started_fields(self) -> dict[str, Any]:
        """What the ledger's `invocation.started` records of this plan (enough to recover)."""


class BrokerDeclaration(ABC, Generic[S]):
    """What a broker declares without importing its SDK. `S` is its settings type."""

    name: ClassVar[str]  # the registry name; also the ledger's `cloud` field
    title: ClassVar[str]  # as people write it, in messages and `--help` panels
    options: ClassVar[tuple[Option, ...]]
    # The option that asks for this broker; named when nothing at all was asked for.
    requires: ClassVar[str]
    # The option that sets its OIDC audience, named when a token's audience is wrong.
    audience_option: ClassVar[str | None] = None
    runtime: ClassVar[str]  # "package.module:Class" of its CredentialBroker
    serves: ClassVar[bool] = False  # whether it has an endpoint for --serve
    emulator: ClassVar[str | None] = None  # its sandbox emulator module, if any
    # The step outputs it publishes under `run --step-outputs` (empty when it issued nothing).
    step_outputs: ClassVar[tuple[str, ...]] = ()
    # Options of `nhi-invoke revoke` for this broker's credentials (e.g. a token allowed to
    # revoke them by id); never from nhi-invoke.toml.
    recovery_options: ClassVar[tuple[Option, ...]] = ()

    @abstractmethod
    def settings(self, values: OptionValues, environ: Mapping[str, str]) -> S | None:
        """Validated settings, or None when the user asked nothing of this broker."""

    @abstractmethod
    def plan(self, settings: S, context: PlanContext) -> BrokerPlan:
        """Its part of one invocation's plan. Pure."""

    @abstractmethod
    def recovery_plan(
        self, started: Mapping[str, Any], environ: Mapping[str, str]
    ) -> BrokerPlan | None:
        """The plan a crashed invocation ran, from what `started_fields` recorded; None when
        nothing of it is needed to end its credentials (they only expire)."""

    def output_values(self, grant: Grant) -> Mapping[str, str]:
        """Its `step_outputs` for the command's credential, from the invocation's memory:
        public names only, never a secret, each on one line."""
        return {}

    def recovery_plan_with(
        self, started: Mapping[str, Any], environ: Mapping[str, str], values: OptionValues
    ) -> BrokerPlan | None:
        """`recovery_plan`, given what `nhi-invoke revoke` was given for `recovery_options`."""
        return self.recovery_plan(started, environ)

    def principal_label(self, principal: str) -> str:
        """A principal as `audit show` prints it."""
        return principal

    def audience_flag(self) -> str | None:
        """The flag that sets its OIDC audience, for hints about a token's audience."""
        return next((o.flag for o in self.options if o.name == self.audience_option), None)


class CredentialBroker(ABC):
    """Issues and ends one invocation's credentials from one source."""

    retries: RetryOutcome

    @abstractmethod
    def __init__(self, plan: Any, policy: RetryPolicy) -> None:
        """Built from this broker's plan (a `BrokerPlan` of its own type)."""

    @abstractmethod
    def issue(self, tokens: TokenSupplier, record: GrantRecorder) -> Grant:
        """Exchange the OIDC token; record every grant the moment it exists; return the
        credential the command gets."""

    @abstractmethod
    def release(
        self, grant: Grant, ended_at: datetime, tokens: TokenSupplier, record: GrantRecorder
    ) -> Release:
        """End one credential as early as the source allows. Never raises: cleanup must
        reach every credential; a failure is reported in the release."""

    def recover(
        self, grant: Grant, ended_at: datetime, tokens: TokenSupplier, record: GrantRecorder
    ) -> Release:
        """End a credential a crashed invocation left open (`nhi-invoke revoke`); the grant
        is rebuilt from the ledger and holds no secret. The same path as `release`."""
        return self.release(grant, ended_at, tokens, record)

    def endpoint(self, grant: CurrentGrant) -> Endpoint:
        """The --serve endpoint for `grant`; only brokers whose declaration `serves`."""
        raise NotImplementedError(f"{type(self).__name__} has no --serve endpoint")

    def private_configuration(
        self, folder: Callable[[], Path], environ: Mapping[str, str], served: bool
    ) -> dict[str, str]:
        """Configuration for the command's tools that keeps the runner's own identities (a
        credentials file, a logged-in CLI) out of their reach, in a folder of this broker's
        (`folder()`: private to the invocation, removed when it ends); returns the variables
        that point the tools at it. Their names belong in `child_variables()`. Default: none."""
        return {}

    def next_renewal(self) -> datetime | None:
        """While the command runs: when `renew` should next be called, or None when nothing
        this broker issued needs renewing (the default: credentials that only expire)."""
        return None

    def renew(self, record: GrantRecorder) -> tuple[str, ...]:
        """Renew what is due, on the invocation's renewal thread while the command runs;
        record each renewed grant again (same fingerprint: the ledger notes the update).
        Never raises; returns warnings for the user (e.g. a maximum lifetime reached)."""
        return ()

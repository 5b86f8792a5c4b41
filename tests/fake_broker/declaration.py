"""The fake broker's declaration: its options, settings and plan, as a real broker declares
them (importable without its runtime)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from nhi_invoke.brokers.grants import Grant
from nhi_invoke.brokers.interface import (
    BrokerDeclaration,
    BrokerPlan,
    ChildVariables,
    PlanContext,
)
from nhi_invoke.settings.option import Kind, Option, OptionValues
from nhi_invoke.settings.validation import endpoint

NAME = "fake"
TOKEN_VARIABLE = "FAKE_SECRET_TOKEN"
DEFAULT_AUDIENCE = "fake-secrets"
DEFAULT_LIFETIME = 300


@dataclass(frozen=True)
class FakeSettings:
    url: str
    audience: str
    lifetime: int


@dataclass(frozen=True)
class FakePlan(BrokerPlan):
    broker: ClassVar[str] = NAME

    url: str
    audience: str
    lifetime_seconds: int
    invocation_id: str
    revocation: str = "revoke-accessor"

    def credential_lifetime(self) -> int:
        return self.lifetime_seconds

    def child_variables(self) -> ChildVariables:
        return ChildVariables(
            set=(TOKEN_VARIABLE, "FAKE_SECRETS_URL"),
            removed=(f"{TOKEN_VARIABLE}_FILE",),
        )

    def child_environment(
        self, grants: Sequence[Grant], served: Mapping[str, str] | None
    ) -> dict[str, str]:
        env: dict[str, str] = {}
        for grant in grants:
            env.update(grant.child_environment())
        return env | {"FAKE_SECRETS_URL": self.url}

    def endings(self) -> tuple[tuple[str, str], ...]:
        return (("fake secret token", "revoked by its accessor when the command ends"),)

    def warnings(self) -> tuple[str, ...]:
        return ("the fake broker is for tests only",)

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("Fake service", self.url),
            ("Fake lifetime", f"{self.lifetime_seconds} s"),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "audience": self.audience, "lifetime": self.lifetime_seconds}

    def started_fields(self) -> dict[str, Any]:
        return {"url": self.url, "audience": self.audience}


class FakeDeclaration(BrokerDeclaration[FakeSettings]):
    name = NAME
    title = "Fake"
    options = (
        Option(
            name="fake_url",
            help="The fake secrets service.",
            group=NAME,
            env=("NHI_FAKE_URL",),
            metavar="URL",
            validate=lambda value: endpoint("--fake-url", value),
        ),
        Option(
            name="fake_lifetime",
            help="Token seconds.",
            group=NAME,
            kind=Kind.NUMBER,
            env=("NHI_FAKE_LIFETIME",),
            default=DEFAULT_LIFETIME,
            metavar="SECONDS",
        ),
        Option(
            name="fake_audience",
            help="Audience of the OIDC token for the fake service.",
            group=NAME,
            env=("NHI_FAKE_AUDIENCE",),
            # As a repository's file must not choose where tokens come from.
            from_config=False,
            default=DEFAULT_AUDIENCE,
            metavar="AUDIENCE",
        ),
    )
    requires = "fake_url"
    audience_option = "fake_audience"
    runtime = "tests.fake_broker.broker:FakeBroker"

    def settings(self, values: OptionValues, environ: Mapping[str, str]) -> FakeSettings | None:
        url = values.get("fake_url")
        if url is None:
            return None
        return FakeSettings(url, values.get("fake_audience"), values.get("fake_lifetime"))

    def plan(self, settings: FakeSettings, context: PlanContext) -> FakePlan:
        return FakePlan(settings.url, settings.audience, settings.lifetime, context.invocation_id)

    def recovery_plan(
        self, started: Mapping[str, Any], environ: Mapping[str, str]
    ) -> FakePlan | None:
        return FakePlan(started["url"], started["audience"], DEFAULT_LIFETIME, "")


DECLARATION = FakeDeclaration()

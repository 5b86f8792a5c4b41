"""The GCP broker's declaration: its options, settings and plan. google-auth is not imported."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nhi_invoke.brokers.gcp import validation
from nhi_invoke.brokers.interface import BrokerDeclaration, PlanContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.settings.option import Kind, Option, OptionValues
from nhi_invoke.settings.validation import endpoint

if TYPE_CHECKING:
    from nhi_invoke.brokers.gcp.plan import GcpPlan
    from nhi_invoke.brokers.grants import Grant

NAME = "gcp"
DEFAULT_LIFETIME = 600
DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
STS_ENDPOINT = "https://sts.googleapis.com"
IAMCREDENTIALS_ENDPOINT = "https://iamcredentials.googleapis.com"


@dataclass(frozen=True)
class GcpSettings:
    provider: str
    service_account: str | None
    scopes: tuple[str, ...]
    lifetime: int
    project: str | None
    audience: str
    sts_endpoint: str
    iamcredentials_endpoint: str


def _audience(provider: str) -> str:
    return f"https://iam.googleapis.com/{provider}"


def _sts_endpoint(environ: Mapping[str, str]) -> str:
    return endpoint("NHI_GCP_STS_ENDPOINT", environ.get("NHI_GCP_STS_ENDPOINT") or STS_ENDPOINT)


def _iamcredentials_endpoint(environ: Mapping[str, str]) -> str:
    return endpoint(
        "NHI_GCP_IAMCREDENTIALS_ENDPOINT",
        environ.get("NHI_GCP_IAMCREDENTIALS_ENDPOINT") or IAMCREDENTIALS_ENDPOINT,
    )


OPTIONS = (
    Option(
        name="gcp_provider",
        help="Workload identity provider "
        "(projects/N/locations/global/workloadIdentityPools/POOL/providers/ID).",
        group=NAME,
        env=("NHI_GCP_PROVIDER",),
        metavar="NAME",
        validate=validation.gcp_provider,
    ),
    Option(
        name="gcp_service_account",
        help="Service account to impersonate; without it the federated token is handed over.",
        group=NAME,
        env=("NHI_GCP_SERVICE_ACCOUNT",),
        metavar="EMAIL",
        validate=validation.service_account,
    ),
    Option(
        name="gcp_scopes",
        help="OAuth scope (repeatable), always sent.",
        group=NAME,
        kind=Kind.LIST,
        flags=("--gcp-scope",),
        default=DEFAULT_SCOPES,
        metavar="URL",
        validate=validation.gcp_scopes,
    ),
    Option(
        name="gcp_lifetime",
        help="Access token seconds, 1-43200 (over 3600 needs an organization policy).",
        group=NAME,
        kind=Kind.NUMBER,
        env=("NHI_GCP_LIFETIME",),
        default=DEFAULT_LIFETIME,
        metavar="SECONDS",
        validate=validation.gcp_lifetime,
    ),
    Option(
        name="gcp_project",
        help="Default project for the command (GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT).",
        group=NAME,
        env=("NHI_GCP_PROJECT",),
        metavar="ID",
        validate=validation.gcp_project,
    ),
    Option(
        name="gcp_audience",
        help="Audience requested for (and checked in) the OIDC token for GCP.",
        group=NAME,
        env=("NHI_GCP_AUDIENCE",),
        default_text="https://iam.googleapis.com/<provider>",
        metavar="AUDIENCE",
    ),
)


class GcpDeclaration(BrokerDeclaration[GcpSettings]):
    name = NAME
    title = "GCP"
    options = OPTIONS
    audience_option = "gcp_audience"
    requires = "gcp_provider"
    runtime = "nhi_invoke.brokers.gcp.broker:GcpBroker"
    serves = True
    emulator = "nhi_invoke.sandbox.gcp"
    step_outputs = ("gcp-service-account",)

    def output_values(self, grant: Grant) -> Mapping[str, str]:
        """The service account (or federated principal) the command acted as."""
        return {"gcp-service-account": grant.principal}

    def settings(self, values: OptionValues, environ: Mapping[str, str]) -> GcpSettings | None:
        if not values.is_given("gcp_provider"):
            return None  # not asked for (the core checks no other GCP option was given)
        provider = values.get("gcp_provider")
        account = values.get("gcp_service_account")
        lifetime = values.explicit("gcp_lifetime")
        if account is None and lifetime is not None:
            # Only an impersonated token's lifetime can be chosen ([defaults] may hold one
            # for the steps that impersonate).
            raise ConfigError(
                f"--gcp-lifetime is given (by {lifetime.label}) but no --gcp-service-account: "
                "the federated token lives as long as the OIDC token allows, whatever it says",
                "add --gcp-service-account to get a token of that lifetime, or drop "
                f"{lifetime.label}",
            )
        return GcpSettings(
            provider=provider,
            service_account=account,
            scopes=values.get("gcp_scopes") or DEFAULT_SCOPES,
            lifetime=values.get("gcp_lifetime"),
            project=values.get("gcp_project"),
            audience=values.get("gcp_audience") or _audience(provider),
            sts_endpoint=_sts_endpoint(environ),
            iamcredentials_endpoint=_iamcredentials_endpoint(environ),
        )

    def plan(self, settings: GcpSettings, context: PlanContext) -> GcpPlan:
        # The plan's code only for a run (or dry run) that uses this broker.
        from nhi_invoke.brokers.gcp.plan import GcpPlan  # noqa: PLC0415

        return GcpPlan(
            provider=settings.provider,
            audience=settings.audience,
            service_account=settings.service_account,
            scopes=settings.scopes,
            lifetime_seconds=settings.lifetime,
            project=settings.project,
            sts_endpoint=settings.sts_endpoint,
            iamcredentials_endpoint=settings.iamcredentials_endpoint,
            request_reason=f"nhi-invoke invocation {context.invocation_id}",
        )

    def recovery_plan(
        self, started: Mapping[str, Any], environ: Mapping[str, str]
    ) -> GcpPlan | None:
        """Enough of the plan to end its tokens: they cannot be revoked, only recorded."""
        from nhi_invoke.brokers.gcp.plan import GcpPlan  # noqa: PLC0415

        provider = started.get("provider")
        if not isinstance(provider, str):
            return None
        return GcpPlan(
            provider=provider,
            audience=_audience(provider),
            service_account=started.get("service_account"),
            scopes=DEFAULT_SCOPES,
            lifetime_seconds=DEFAULT_LIFETIME,
            project=None,
            # Not called: nothing is exchanged to record an expiry.
            sts_endpoint=STS_ENDPOINT,
            iamcredentials_endpoint=IAMCREDENTIALS_ENDPOINT,
            request_reason=str(started.get("request_reason", "")),
        )


DECLARATION = GcpDeclaration()

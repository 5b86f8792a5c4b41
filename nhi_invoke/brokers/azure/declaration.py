"""The Azure broker's declaration: its options, settings and plan. Nothing of it talks to Entra."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nhi_invoke.brokers.azure import validation
from nhi_invoke.brokers.interface import BrokerDeclaration, PlanContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.settings.option import Kind, Option, OptionValues

if TYPE_CHECKING:
    from nhi_invoke.brokers.azure.plan import AzurePlan

NAME = "azure"
CLOUD_NAMES = ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud")  # clouds.CLOUDS
DEFAULT_CLOUD = CLOUD_NAMES[0]
DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
# Entra's `client-request-id` is a GUID; the invocation id is not. Each invocation's is
# uuid5(this namespace, invocation id): the same id, in the form Entra's sign-in logs keep.
REQUEST_ID_NAMESPACE = "6f3b0c52-8d1e-5a47-9c2b-7e4f1d0a3b96"


def client_request_id(invocation_id: str) -> str:
    import uuid  # noqa: PLC0415 - only a run (or dry run) that uses Azure needs it

    return str(uuid.uuid5(uuid.UUID(REQUEST_ID_NAMESPACE), invocation_id))


@dataclass(frozen=True)
class AzureSettings:
    client_id: str
    tenant_id: str
    audience: str
    scopes: tuple[str, ...]
    cloud: str
    authority: str
    ca_file: str | None


OPTIONS = (
    Option(
        name="azure_client_id",
        help="Application (client) ID of the app registration or user-assigned managed "
        "identity whose federated credential trusts this pipeline.",
        group=NAME,
        env=("NHI_AZURE_CLIENT_ID",),
        metavar="ID",
        validate=validation.client_id,
    ),
    Option(
        name="azure_tenant_id",
        help="Directory (tenant) ID, or a verified domain, of that identity.",
        group=NAME,
        env=("NHI_AZURE_TENANT_ID",),
        metavar="ID",
        validate=validation.tenant_id,
    ),
    Option(
        name="azure_audience",
        help="Audience requested for (and checked in) the OIDC token for Entra: the "
        "federated credential's audience.",
        group=NAME,
        env=("NHI_AZURE_AUDIENCE",),
        default=DEFAULT_AUDIENCE,
        metavar="AUDIENCE",
        validate=validation.audience,
    ),
    Option(
        name="azure_scopes",
        help="A resource the command may ask tokens for, as <resource>/.default (repeatable); "
        "any other is refused.",
        group=NAME,
        kind=Kind.LIST,
        flags=("--azure-scope",),
        env=("NHI_AZURE_SCOPES",),
        default_text="https://management.azure.com/.default (the cloud's Resource Manager)",
        metavar="SCOPE",
        validate=validation.scopes,
    ),
    Option(
        name="azure_cloud",
        help="The Azure cloud: " + ", ".join(CLOUD_NAMES) + " (its Entra authority and default "
        "scope).",
        group=NAME,
        env=("NHI_AZURE_CLOUD",),
        default=DEFAULT_CLOUD,
        metavar="CLOUD",
        validate=validation.cloud,
    ),
    Option(
        name="azure_authority_host",
        help="Entra authority instead of the cloud's, as azure-identity reads it.",
        group=NAME,
        cli=False,
        env=("NHI_AZURE_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"),
        # Where the pipeline's OIDC token is sent: not a repository file's choice.
        from_config=False,
        default_text="the cloud's",
        metavar="URL",
        validate=validation.authority_host,
    ),
    Option(
        name="azure_ca_bundle",
        help="PEM file of the only CAs trusted for the Entra authority (a private cloud's, "
        "the sandbox's).",
        group=NAME,
        cli=False,
        env=("NHI_AZURE_CA_BUNDLE",),
        from_config=False,
        default_text="the system's",
        metavar="FILE",
        validate=validation.ca_bundle,
    ),
)


class AzureDeclaration(BrokerDeclaration[AzureSettings]):
    name = NAME
    title = "Azure"
    options = OPTIONS
    audience_option = "azure_audience"
    requires = "azure_client_id"
    runtime = "nhi_invoke.brokers.azure.broker:AzureBroker"
    serves = True
    emulator = "nhi_invoke.sandbox.azure_emulator"

    def settings(self, values: OptionValues, environ: Mapping[str, str]) -> AzureSettings | None:
        if not values.is_given("azure_client_id"):  # stray options: settings/resolve.py
            return None
        client = values.get("azure_client_id")  # checked before anything else is asked
        if not values.is_given("azure_tenant_id"):
            raise ConfigError(
                "--azure-client-id is given but no --azure-tenant-id",
                "pass --azure-tenant-id with the Directory (tenant) ID of that identity",
            )
        from nhi_invoke.brokers.azure.clouds import CLOUDS  # noqa: PLC0415

        cloud = CLOUDS[values.get("azure_cloud")]
        authority = values.get("azure_authority_host")
        return AzureSettings(
            client_id=client,
            tenant_id=values.get("azure_tenant_id"),
            audience=values.get("azure_audience"),
            scopes=values.get("azure_scopes") or (cloud.default_scope,),
            cloud=cloud.name,
            authority=authority or cloud.authority_host,
            ca_file=values.get("azure_ca_bundle"),
        )

    def plan(self, settings: AzureSettings, context: PlanContext) -> AzurePlan:
        from nhi_invoke.brokers.azure.plan import AzurePlan  # noqa: PLC0415

        return AzurePlan(
            client_id=settings.client_id,
            tenant_id=settings.tenant_id,
            audience=settings.audience,
            scopes=settings.scopes,
            cloud=settings.cloud,
            authority=settings.authority,
            ca_file=settings.ca_file,
            invocation_id=context.invocation_id,
            client_request_id=client_request_id(context.invocation_id),
        )

    def recovery_plan(
        self, started: Mapping[str, Any], environ: Mapping[str, str]
    ) -> AzurePlan | None:
        # Entra access tokens cannot be revoked: a crashed invocation's are only recorded
        # with their expiry, which needs nothing of the plan.
        return None

    def principal_label(self, principal: str) -> str:
        return f"Azure app {principal}"


DECLARATION = AzureDeclaration()

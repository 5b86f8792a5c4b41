"""The Azure part of a plan: what will be asked of Entra, and what the child gets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from nhi_invoke.brokers.azure.clouds import CLOUDS
from nhi_invoke.brokers.grants import Grant
from nhi_invoke.brokers.interface import BrokerPlan, ChildVariables

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# What Entra's client-credentials answers show; the real expiry of each token is recorded.
EXPECTED_LIFETIME = 3599
ENDPOINT_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_CONFIG_DIR")
# azure-identity >= 1.23 (and the other languages' SDKs) read it: `prod` keeps
# DefaultAzureCredential to environment, workload identity and managed identity, so a refusal
# from the endpoint never falls through to a job-wide Azure CLI, PowerShell or azd login.
CHAIN_VARIABLE = "AZURE_TOKEN_CREDENTIALS"
IDENTITY_VARIABLES = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID")
_CHILD_VARIABLES = ChildVariables(
    set=(*ENDPOINT_VARIABLES, *IDENTITY_VARIABLES, CHAIN_VARIABLE),
    served=(*ENDPOINT_VARIABLES, *IDENTITY_VARIABLES, CHAIN_VARIABLE),
    removed=(
        # azure-identity's EnvironmentCredential and WorkloadIdentityCredential come before
        # the endpoint in DefaultAzureCredential: an inherited secret or token file would win.
        "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
        "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE",
        # Other managed-identity protocols, chosen over (or instead of) App Service's.
        "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        # Terraform's azurerm provider: secrets and OIDC of another identity.
        "ARM_CLIENT_SECRET", "ARM_CLIENT_CERTIFICATE", "ARM_CLIENT_CERTIFICATE_PATH",
        "ARM_CLIENT_CERTIFICATE_PASSWORD", "ARM_OIDC_TOKEN", "ARM_OIDC_TOKEN_FILE_PATH",
        "ARM_OIDC_REQUEST_TOKEN", "ARM_OIDC_REQUEST_URL", "ARM_ACCESS_KEY", "ARM_SAS_TOKEN",
        # The Azure CLI's storage commands use these before the signed-in identity.
        "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class AzurePlan(BrokerPlan):
    """What will be asked of Entra: client-credentials grants with the OIDC token as the
    client assertion, one per resource the command asks for, each only if allowed."""

    broker: ClassVar[str] = "azure"
    # Azure's SDKs and CLI read no variable holding a token; they ask an endpoint.
    always_served: ClassVar[bool] = True

    client_id: str
    tenant_id: str
    audience: str
    scopes: tuple[str, ...]  # the allowed ones; the first is asked for before the command
    cloud: str
    authority: str
    ca_file: str | None
    invocation_id: str
    client_request_id: str  # a GUID naming the invocation in Entra's sign-in logs
    revocation: str = "expire"

    @property
    def token_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def first_scope(self) -> str:
        return self.scopes[0]

    def allows(self, resource: str) -> str | None:
        """The allowed scope that covers `resource` (as a managed-identity request names it),
        or None: the resource as asked, + /.default, is what Entra is asked for."""
        cloud = CLOUDS[self.cloud]
        wanted = cloud.resource_key(resource)
        for scope in self.scopes:
            if cloud.resource_key(scope.removesuffix("/.default")) == wanted:
                return scope
        return None

    def credential_lifetime(self) -> int:
        return EXPECTED_LIFETIME

    def child_variables(self) -> ChildVariables:
        return _CHILD_VARIABLES

    def child_environment(
        self, grants: Sequence[Grant], served: Mapping[str, str] | None
    ) -> dict[str, str]:
        env = dict(served or {})
        env |= {
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_TENANT_ID": self.tenant_id,
            CHAIN_VARIABLE: "prod",
        }
        return env

    def endings(self) -> tuple[tuple[str, str], ...]:
        return (
            (
                f"Azure access tokens of {self.client_id} (one per resource asked for)",
                "expire when Entra says (about 1 h after issue); cannot be revoked; the "
                "endpoint that hands them out stops when the command exits",
            ),
        )

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("Azure OIDC audience", self.audience),
            (
                "Azure exchange",
                f"client credentials at {self.token_url} for {self.client_id}, the OIDC token "
                "as client assertion",
            ),
            ("Azure scopes allowed", ", ".join(self.scopes)),
            ("Azure first token", f"{self.first_scope}, before the command starts"),
            (
                "Azure endpoint",
                "managed identity (App Service protocol: IDENTITY_ENDPOINT, IDENTITY_HEADER) "
                "on 127.0.0.1 for the command's lifetime; a private, empty AZURE_CONFIG_DIR",
            ),
            (
                "Azure attribution",
                f"client-request-id {self.client_request_id} (uuid5 of invocation "
                f"{self.invocation_id}) in Entra's sign-in logs",
            ),
            ("Azure revocation", "none: Entra access tokens cannot be revoked; they expire"),
        ]

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["token_url"] = self.token_url
        return data

    def started_fields(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "tenant_id": self.tenant_id,
            "authority": self.authority,
            "scopes": list(self.scopes),
            "client_request_id": self.client_request_id,
        }

"""The Entra ID token endpoint as one of the sandbox's emulators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nhi_invoke.sandbox import entra_directory as entra
from nhi_invoke.sandbox.azure import EntraEmulator, sandbox_entra
from nhi_invoke.sandbox.oidc_issuer import OidcIssuer

if TYPE_CHECKING:
    from nhi_invoke.sandbox.emulators import SandboxRequest


class AzureEmulator:
    """Entra over TLS with a throwaway CA; its deployer app federates the sandbox's subject."""

    def __init__(self, issuer: OidcIssuer) -> None:
        run = issuer.run
        self.entra: EntraEmulator = sandbox_entra(
            issuer.url, f"repo:{run.repository}:ref:{run.ref}"
        )

    def start(self) -> None:
        self.entra.start()

    def stop(self) -> None:
        self.entra.stop()

    def environ(self) -> dict[str, str]:
        # Where nhi-invoke asks Entra, and the throwaway CA it trusts for that alone.
        return {"AZURE_AUTHORITY_HOST": self.entra.url, "NHI_AZURE_CA_BUNDLE": self.entra.ca_file}

    def describe(self) -> dict[str, Any]:
        return {
            "azure_authority_host": self.entra.url,
            "azure_ca_file": self.entra.ca_file,
            "azure_tenant_id": entra.SANDBOX_TENANT_ID,
            "azure_client_id": entra.SANDBOX_CLIENT_ID,
            "azure_blocked_client_id": entra.BLOCKED_CLIENT_ID,
            "azure_audience": entra.DEFAULT_AUDIENCE,
        }

    def announce(self) -> str:
        return f"Entra ID token endpoint at {self.entra.url} (tenant {entra.SANDBOX_TENANT_ID})"

    def given(self, request: SandboxRequest) -> dict[str, Any]:
        return {
            "azure_client_id": entra.SANDBOX_CLIENT_ID,
            "azure_tenant_id": entra.SANDBOX_TENANT_ID,
        }


def create(issuer: OidcIssuer) -> AzureEmulator:
    return AzureEmulator(issuer)

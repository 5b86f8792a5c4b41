"""The directory the Entra emulator serves: tenants, their applications with federated
identity credentials, and the resources tokens can be asked for."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SANDBOX_TENANT_ID = "5b0f3c1e-2d4a-4f6b-8c7d-9e0f1a2b3c4d"
SANDBOX_DOMAIN = "nhisandbox.onmicrosoft.com"
SANDBOX_CLIENT_ID = "3f2e1d0c-9b8a-4765-a432-10fedcba9876"
SANDBOX_OBJECT_ID = "8c7b6a59-4837-4261-9f0e-d1c2b3a49586"
BLOCKED_CLIENT_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
SANDBOX_API = "api://nhi-sandbox-api"
SANDBOX_SUBSCRIPTION_ID = "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f"
MANAGEMENT = "https://management.azure.com"
# The audiences ARM takes: its two application ID URIs, with or without the slash.
ARM_AUDIENCES = (
    MANAGEMENT,
    MANAGEMENT + "/",
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
)


@dataclass(frozen=True)
class FederatedCredential:
    """Which external tokens an application trusts: all three must match exactly."""

    issuer: str
    subject: str
    audiences: tuple[str, ...] = (DEFAULT_AUDIENCE,)
    name: str = "github"


@dataclass(frozen=True)
class Application:
    """An app registration or user-assigned managed identity (its service principal)."""

    client_id: str
    object_id: str
    display_name: str
    federated_credentials: tuple[FederatedCredential, ...] = ()
    blocked: bool = False  # Entra blocks its sign-ins: AADSTS50053


@dataclass(frozen=True)
class Resource:
    """An API tokens can be asked for; `token_version` is the format it accepts."""

    identifiers: tuple[str, ...]
    app_id: str
    token_version: int = 1

    def accepts(self, requested: str) -> bool:
        return requested == self.app_id or requested.rstrip("/") in {
            i.rstrip("/") for i in self.identifiers
        }


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str
    domains: tuple[str, ...] = ()
    applications: tuple[Application, ...] = ()

    def application(self, client_id: str) -> Application | None:
        return next((a for a in self.applications if a.client_id == client_id), None)


@dataclass(frozen=True)
class Directory:
    tenants: tuple[Tenant, ...]
    resources: tuple[Resource, ...]

    def tenant(self, name: str) -> Tenant | None:
        wanted = name.lower()
        return next((t for t in self.tenants if wanted == t.tenant_id or wanted in t.domains), None)


# Microsoft's own APIs, by their well-known application ids.
MICROSOFT_RESOURCES = (
    Resource(
        (MANAGEMENT, "https://management.core.windows.net/"),
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    ),
    Resource(("https://graph.microsoft.com",), "00000003-0000-0000-c000-000000000000"),
    Resource(("https://vault.azure.net",), "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"),
    Resource(("https://storage.azure.com",), "e406a681-f3d4-42a8-90b6-c2b029497af1"),
)


def sandbox_directory(trusted: Sequence[tuple[str, str]]) -> Directory:
    """The sandbox tenant: an app federating each (issuer, subject), and a blocked twin."""
    credentials = tuple(
        FederatedCredential(issuer, subject, name=f"trust-{n}")
        for n, (issuer, subject) in enumerate(trusted)
    )
    tenant = Tenant(
        SANDBOX_TENANT_ID,
        "nhi-invoke sandbox",
        (SANDBOX_DOMAIN,),
        (
            Application(SANDBOX_CLIENT_ID, SANDBOX_OBJECT_ID, "nhi-sandbox-deployer", credentials),
            Application(
                BLOCKED_CLIENT_ID, str(uuid.uuid4()), "nhi-sandbox-blocked", credentials, True
            ),
        ),
    )
    api = Resource((SANDBOX_API,), "6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098", token_version=2)
    return Directory((tenant,), (*MICROSOFT_RESOURCES, api))

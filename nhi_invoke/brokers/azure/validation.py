"""Checks of single Azure option values (exit 78 on failure, naming the fix). No network."""

from __future__ import annotations

import os
import re
import urllib.parse

from nhi_invoke.errors import ConfigError

# Patterns as text: `re` compiles (and caches) them on first use, so runs without Azure skip it.
GUID = r"(?a)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DOMAIN = r"(?a)(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
# Entra's multi-tenant aliases: a client-credentials grant needs the tenant itself.
TENANT_ALIASES = ("common", "organizations", "consumers")
MAX_AUDIENCE = 600  # a federated credential's audience is at most 600 characters
DEFAULT_SUFFIX = "/.default"


def client_id(value: str) -> str:
    lowered = value.strip().lower()
    if not re.fullmatch(GUID, lowered):
        raise ConfigError(
            f"--azure-client-id {value[:80]!r} is not a client id",
            "pass the Application (client) ID of the app registration or user-assigned "
            "managed identity (a GUID such as 3f2e1d0c-9b8a-4765-a432-10fedcba9876)",
        )
    return lowered


def tenant_id(value: str) -> str:
    lowered = value.strip().lower()
    if lowered in TENANT_ALIASES:
        raise ConfigError(
            f"--azure-tenant-id {value!r} names no tenant (a workload signs in to its own)",
            "pass the Directory (tenant) ID, a GUID, or a verified domain of the tenant",
        )
    if not (re.fullmatch(GUID, lowered) or re.fullmatch(DOMAIN, lowered)):
        raise ConfigError(
            f"--azure-tenant-id {value[:80]!r} is neither a tenant id nor a domain",
            "pass the Directory (tenant) ID (a GUID) or a verified domain such as "
            "contoso.onmicrosoft.com",
        )
    return lowered


def audience(value: str) -> str:
    if not value or len(value) > MAX_AUDIENCE or any(c.isspace() for c in value):
        raise ConfigError(
            f"--azure-audience {value[:80]!r} is not an audience a federated credential can hold",
            "pass the audience of your federated credential (default api://AzureADTokenExchange)",
        )
    return value


def cloud(value: str) -> str:
    from nhi_invoke.brokers.azure.clouds import CLOUDS  # noqa: PLC0415 - only when used

    found = next((name for name in CLOUDS if name.lower() == value.strip().lower()), None)
    if found is None:
        raise ConfigError(
            f"--azure-cloud {value[:40]!r} is not an Azure cloud",
            "pass one of " + ", ".join(CLOUDS),
        )
    return found


def _resource_ok(resource: str) -> bool:
    parts = urllib.parse.urlsplit(resource)
    if re.fullmatch(GUID, resource.lower()):
        return True  # an application's client id names its API too
    if parts.scheme == "https":
        return bool(parts.hostname) and not parts.query and not parts.fragment
    return parts.scheme == "api" and bool(parts.netloc or parts.path)


def scopes(values: tuple[str, ...]) -> tuple[str, ...]:
    for scope in values:
        if any(c.isspace() for c in scope) or not scope.endswith(DEFAULT_SUFFIX):
            raise ConfigError(
                f"--azure-scope {scope[:120]!r} is not a <resource>/.default scope",
                "an application's token names one resource with all the roles it was granted: "
                "pass e.g. https://management.azure.com/.default",
            )
        if not _resource_ok(scope[: -len(DEFAULT_SUFFIX)]):
            raise ConfigError(
                f"--azure-scope {scope[:120]!r} names no resource",
                "use an https:// or api:// application ID URI, or an application's client id, "
                "followed by /.default",
            )
    return tuple(dict.fromkeys(values))


def authority_host(value: str) -> str:
    """As azure-identity takes it: `https://` added when no scheme is given; only https."""
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"AZURE_AUTHORITY_HOST={value[:120]!r} is not an https URL",
            "set it to your cloud's Entra authority, e.g. https://login.microsoftonline.us "
            "(Entra is reached over TLS only)",
        )
    return text.rstrip("/")


def ca_bundle(value: str) -> str:
    if not os.path.isfile(value) or not os.access(value, os.R_OK):
        raise ConfigError(
            f"NHI_AZURE_CA_BUNDLE={value[:200]!r} is not a readable file",
            "point it at a PEM file of the CA certificates that sign your Entra authority's "
            "certificate, or unset it",
        )
    return value

"""Checks of single GCP option values (exit 78 on failure, naming the fix). No network."""

from __future__ import annotations

import re
import urllib.parse

from nhi_invoke.errors import ConfigError

GCP_MAX_LIFETIME = 43_200  # beyond 3600 needs the org policy that allows extended lifetimes
GCP_PROVIDER = re.compile(
    r"projects/(\d{1,20})/locations/global/workloadIdentityPools/([a-z0-9-]{4,32})"
    r"/providers/([a-z0-9-]{4,32})",
    re.ASCII,
)
SERVICE_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}@[a-z0-9][a-z0-9.-]{0,200}\.com", re.ASCII)
GCP_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", re.ASCII)


_PROVIDER_FORM = (
    "projects/<project NUMBER>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
)
_GCP_ID = re.compile(r"[a-z0-9-]+", re.ASCII)


def _id_problem(what: str, value: str) -> str | None:
    if not 4 <= len(value) <= 32:
        return f"the {what} id {value[:40]!r} has {len(value)} characters, not 4-32"
    if not _GCP_ID.fullmatch(value):
        return f"the {what} id {value!r} has characters other than lowercase letters, digits and -"
    if value.startswith("gcp-"):
        return f"the {what} id {value!r} starts with 'gcp-', which Google reserves"
    return None


def _provider_problem(value: str) -> str:
    """Which part of a provider name is wrong, in words."""
    parts = value.split("/")
    expected = ("projects", None, "locations", None, "workloadIdentityPools", None, "providers")
    if len(parts) != 8 or any(
        want is not None and got != want for got, want in zip(parts, expected, strict=False)
    ):
        return "it does not have the form " + _PROVIDER_FORM
    project, location, pool, provider = parts[1], parts[3], parts[5], parts[7]
    if not re.fullmatch(r"\d{1,20}", project, re.ASCII):
        return (
            f"the project {project[:40]!r} is not a project number (the provider name uses the "
            "number, not the id: gcloud projects describe PROJECT_ID "
            "--format='value(projectNumber)')"
        )
    if location != "global":
        return f"the location is {location[:40]!r}: workload identity pools are 'global'"
    return (
        _id_problem("pool", pool)
        or _id_problem("provider", provider)
        or "it does not have the form " + _PROVIDER_FORM
    )


def gcp_provider(value: str) -> str:
    parts = value.split("/")
    if GCP_PROVIDER.fullmatch(value) and not any(p.startswith("gcp-") for p in parts[5::2]):
        return value
    raise ConfigError(
        f"--gcp-provider {value[:160]!r} is not a workload identity provider name: "
        + _provider_problem(value),
        "use " + _PROVIDER_FORM,
    )


def service_account(value: str) -> str:
    if not SERVICE_ACCOUNT.fullmatch(value):
        raise ConfigError(
            f"--gcp-service-account {value[:120]!r} is not a service account email",
            "use NAME@PROJECT.iam.gserviceaccount.com",
        )
    return value


def gcp_scopes(values: tuple[str, ...]) -> tuple[str, ...]:
    for scope in values:
        parts = urllib.parse.urlsplit(scope)
        if parts.scheme != "https" or not parts.netloc or any(c.isspace() for c in scope):
            raise ConfigError(
                f"--gcp-scope {scope[:120]!r} is not an OAuth scope URL",
                "use e.g. https://www.googleapis.com/auth/cloud-platform",
            )
    return values


def gcp_lifetime(value: int) -> int:
    if not 1 <= value <= GCP_MAX_LIFETIME:
        raise ConfigError(
            f"--gcp-lifetime {value} is outside 1-{GCP_MAX_LIFETIME} s",
            "pass a lifetime in seconds; 600 is a good default",
        )
    return value


def gcp_project(value: str) -> str:
    if not GCP_PROJECT.fullmatch(value):
        raise ConfigError(
            f"--gcp-project {value[:60]!r} is not a project id",
            "use the project id (6-30 lowercase letters, digits and -)",
        )
    return value

"""The child's environment: what is injected, what is stripped. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nhi_invoke.clouds.interface import Grant

if TYPE_CHECKING:
    from nhi_invoke.serve import Endpoints

ACTIVE_VARIABLE = "NHI_INVOKE_ACTIVE"
ALWAYS_SET = ("NHI_INVOCATION_ID", "NHI_STEP_ID", ACTIVE_VARIABLE)
# The ledger's HMAC key: a command holding it could forge ledger lines.
ALWAYS_REMOVED = ("NHI_LEDGER_KEY",)


@dataclass(frozen=True)
class CloudVariables:
    """The variables one cloud's credentials occupy in the child's environment."""

    set: tuple[str, ...]
    # Anything that would let the SDK find another identity than the one we hand over.
    removed: tuple[str, ...]
    removed_prefixes: tuple[str, ...] = ()

    def strips(self, name: str) -> bool:
        return name in self.set or name in self.removed or name.startswith(self.removed_prefixes)


CLOUD_VARIABLES: Mapping[str, CloudVariables] = {
    "aws": CloudVariables(
        set=(
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_CREDENTIAL_EXPIRATION", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SDK_UA_APP_ID",
        ),
        removed=(
            "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_SESSION_NAME", "AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
        ),
        removed_prefixes=("AWS_CONTAINER_CREDENTIALS_", "AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    ),
    "gcp": CloudVariables(
        set=("CLOUDSDK_AUTH_ACCESS_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN"),
        removed=(
            "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT",
            # Terraform's google provider reads these before GOOGLE_OAUTH_ACCESS_TOKEN.
            "GOOGLE_CREDENTIALS", "GOOGLE_CLOUD_KEYFILE_JSON", "GCLOUD_KEYFILE_JSON",
            "GOOGLE_IMPERSONATE_SERVICE_ACCOUNT", "GCE_METADATA_HOST", "GCE_METADATA_IP",
            "GCE_METADATA_ROOT",
        ),
    ),
}  # fmt: skip
# With --serve the command gets endpoints instead of static credentials.
SERVED_SET: Mapping[str, tuple[str, ...]] = {
    "aws": (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_SDK_UA_APP_ID",
    ),
    "gcp": ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"),
}
GCP_PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")


def names_set(clouds: Iterable[str], *, gcp_project: bool, served: bool = False) -> tuple[str, ...]:
    """The variables the child will be given, for the plan."""
    names: list[str] = []
    for cloud in clouds:
        names += SERVED_SET[cloud] if served else CLOUD_VARIABLES[cloud].set
    if gcp_project:
        names += GCP_PROJECT_VARIABLES
    return (*names, *ALWAYS_SET)


def _stripped(name: str, clouds: Sequence[str], token_variables: tuple[str, ...]) -> bool:
    return (
        name in token_variables
        or name in ALWAYS_REMOVED
        or any(CLOUD_VARIABLES[c].strips(name) for c in clouds)
    )


def removed_names(
    environ: Mapping[str, str], clouds: Sequence[str], token_variables: Iterable[str]
) -> list[str]:
    """The inherited variables the child will not see (names only, for the plan and logs)."""
    stripped = tuple(token_variables)
    set_by_us = set(names_set(clouds, gcp_project=False))
    return sorted(n for n in environ if _stripped(n, clouds, stripped) and n not in set_by_us)


def _served(endpoints: Endpoints) -> dict[str, str]:
    env: dict[str, str] = {}
    if endpoints.aws_uri and endpoints.aws_token:
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = endpoints.aws_uri
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = endpoints.aws_token
    if endpoints.metadata_host:
        # google-auth reads HOST for requests and IP for its detection ping; gcloud reads ROOT.
        for name in SERVED_SET["gcp"]:
            env[name] = endpoints.metadata_host
    return env


def build(
    environ: Mapping[str, str],
    grants: Sequence[Grant],
    *,
    invocation_id: str,
    step_id: str,
    aws_region: str | None,
    gcp_project: str | None,
    token_variables: Iterable[str],
    endpoints: Endpoints | None = None,
) -> dict[str, str]:
    """The parent's environment, cleaned of other identities, plus this invocation's:
    its credentials, or (with --serve) where to fetch them."""
    clouds = sorted({g.cloud for g in grants})
    stripped = tuple(token_variables)
    env = {k: v for k, v in environ.items() if not _stripped(k, clouds, stripped)}
    if endpoints is not None:
        env.update(_served(endpoints))
    else:
        for grant in grants:
            env.update(grant.child_environment())
            if grant.cloud == "aws":
                env["AWS_CREDENTIAL_EXPIRATION"] = grant.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if aws_region is not None:
        env.update(
            {
                "AWS_REGION": aws_region,
                "AWS_DEFAULT_REGION": aws_region,
                # Shows in CloudTrail's userAgent for every call the command makes.
                "AWS_SDK_UA_APP_ID": f"nhi/{invocation_id}",
            }
        )
    if gcp_project is not None:
        env.update(dict.fromkeys(GCP_PROJECT_VARIABLES, gcp_project))
    env.update(
        {"NHI_INVOCATION_ID": invocation_id, "NHI_STEP_ID": step_id, ACTIVE_VARIABLE: invocation_id}
    )
    return env

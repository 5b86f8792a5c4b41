"""The GCP part of a plan: what will be asked of GCP STS and IAM Credentials, and what the
child gets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from nhi_invoke.brokers.gcp.declaration import DEFAULT_LIFETIME
from nhi_invoke.brokers.grants import Grant
from nhi_invoke.brokers.interface import BrokerPlan, ChildVariables
from nhi_invoke.figures import duration

STANDARD_MAX_LIFETIME = 3_600
PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
# google-auth reads HOST for requests and IP for its detection ping; gcloud reads ROOT.
METADATA_VARIABLES = ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT")
# gcloud's own configuration folder for the invocation, in both modes (gcloud_config.py).
CONFIG_VARIABLE = "CLOUDSDK_CONFIG"
# Static mode gives google-auth's default() nothing to find (it reads no token variable): it
# must fail at once rather than fall back to a GCE VM's own identity.
NO_GCE_CHECK = "NO_GCE_CHECK"
_CHILD_VARIABLES = ChildVariables(
    set=("CLOUDSDK_AUTH_ACCESS_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN", CONFIG_VARIABLE, NO_GCE_CHECK),
    served=(*METADATA_VARIABLES, CONFIG_VARIABLE),
    removed=(
        "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT",
        # Terraform's google provider reads these before GOOGLE_OAUTH_ACCESS_TOKEN.
        "GOOGLE_CREDENTIALS", "GOOGLE_CLOUD_KEYFILE_JSON", "GCLOUD_KEYFILE_JSON",
        "GOOGLE_IMPERSONATE_SERVICE_ACCOUNT", *METADATA_VARIABLES,
        # The runner's named configuration does not exist in the invocation's folder.
        "CLOUDSDK_ACTIVE_CONFIG_NAME", NO_GCE_CHECK,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class GcpPlan(BrokerPlan):
    """What will be asked of GCP STS and IAM Credentials."""

    broker: ClassVar[str] = "gcp"

    provider: str
    audience: str
    service_account: str | None
    scopes: tuple[str, ...]
    lifetime_seconds: int
    project: str | None
    sts_endpoint: str
    iamcredentials_endpoint: str
    # GCP has no caller-chosen session name; this header is the attribution it allows.
    request_reason: str
    revocation: str = "expire"

    def credential_lifetime(self) -> int:
        return self.lifetime_seconds

    @property
    def sts_audience(self) -> str:
        """The audience field of the STS token exchange: the provider's full resource name."""
        return f"//iam.googleapis.com/{self.provider}"

    @property
    def pool(self) -> str:
        return self.provider.rsplit("/providers/", 1)[0]

    @property
    def project_number(self) -> str:
        """The number of the workload identity pool's project."""
        return self.provider.split("/")[1]

    @property
    def served_project(self) -> str | None:
        """The project the metadata server names: --gcp-project, else the service account's
        (`NAME@PROJECT.iam.gserviceaccount.com`, `PROJECT@appspot.gserviceaccount.com`)."""
        if self.project:
            return self.project
        if self.service_account:
            name, _, domain = self.service_account.partition("@")
            if domain.endswith(".iam.gserviceaccount.com"):
                return domain.removesuffix(".iam.gserviceaccount.com")
            if domain == "appspot.gserviceaccount.com":
                return name
        return None

    @property
    def served_project_number(self) -> str:
        """The project number the metadata server names: the workload identity pool's, the
        only one nhi-invoke knows (gcloud recognises a metadata server by a numeric answer)."""
        return self.project_number

    def child_variables(self) -> ChildVariables:
        if self.project is None:
            return _CHILD_VARIABLES
        return dataclasses.replace(
            _CHILD_VARIABLES,
            set=(*_CHILD_VARIABLES.set, *PROJECT_VARIABLES),
            served=(*_CHILD_VARIABLES.served, *PROJECT_VARIABLES),
        )

    def child_environment(
        self, grants: Sequence[Grant], served: Mapping[str, str] | None
    ) -> dict[str, str]:
        env: dict[str, str] = {}
        if served is not None:
            env.update(served)
        else:
            for grant in grants:
                env.update(grant.child_environment())
            env[NO_GCE_CHECK] = "true"
        if self.project is not None:
            env.update(dict.fromkeys(PROJECT_VARIABLES, self.project))
        return env

    def endings(self) -> tuple[tuple[str, str], ...]:
        federated = "expires with the OIDC token's lifetime (at most 1 h); cannot be revoked"
        if self.service_account is None:
            return (("GCP federated token (the command's)", federated),)
        return (
            ("GCP federated token (used by nhi-invoke only)", federated),
            (
                f"GCP access token ({self.service_account})",
                f"expires {duration(self.lifetime_seconds)} after issue; cannot be revoked",
            ),
        )

    def warnings(self) -> tuple[str, ...]:
        warnings = []
        if self.service_account is None:
            warnings.append(
                "no --gcp-service-account: the federated token itself is handed over; it lives "
                "as long as the OIDC token allows (up to 1 h) and its lifetime cannot be chosen"
            )
            # The lifetime is the impersonated token's: without one, nothing more to say.
            return tuple(warnings)
        if self.lifetime_seconds > DEFAULT_LIFETIME:
            warnings.append(
                f"the GCP token stays usable for {duration(self.lifetime_seconds)} and cannot "
                "be revoked: keep --gcp-lifetime as short as the command needs"
            )
        if self.lifetime_seconds > STANDARD_MAX_LIFETIME:
            warnings.append(
                f"--gcp-lifetime {self.lifetime_seconds} needs the organization policy "
                "constraints/iam.allowServiceAccountCredentialLifetimeExtension"
            )
        return tuple(warnings)

    def rows(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = [
            ("GCP OIDC audience", self.audience),
            ("GCP exchange", f"STS {self.sts_endpoint}/v1/token for {self.sts_audience}"),
        ]
        if self.service_account:
            rows.append(
                (
                    "GCP impersonation",
                    f"generateAccessToken -> {self.service_account} "
                    f"({duration(self.lifetime_seconds)})",
                )
            )
            lifetime = f"{duration(self.lifetime_seconds)} after issue"
        else:
            rows.append(("GCP impersonation", "none: the federated token is handed over"))
            lifetime = "when the OIDC token's lifetime allows (up to 1 h)"
        rows += [
            ("GCP scopes", ", ".join(self.scopes)),
            (
                "GCP attribution",
                f"X-Goog-Request-Reason: {self.request_reason} (GCP has no caller-chosen "
                "session name)",
            ),
            (
                "GCP revocation",
                f"none: GCP access tokens cannot be revoked; they expire {lifetime}",
            ),
        ]
        if self.project:
            rows.append(("GCP project", self.project))
        return rows

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["sts_audience"] = self.sts_audience
        return data

    def started_fields(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "service_account": self.service_account,
            "request_reason": self.request_reason,
        }

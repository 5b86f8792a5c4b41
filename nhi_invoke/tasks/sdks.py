"""The SDK objects a task's code can call with directly: each imports its SDK only when called.

The one module outside the brokers' packages that names clouds (tests/unit/test_layout.py
allows it): these accessors are part of the public API, and their names say what they return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nhi_invoke.brokers.grants import Grant

if TYPE_CHECKING:
    import boto3
    import google.oauth2.credentials


class SdkAccessors:
    """`inv.boto3_session()`, `inv.google_credentials()`."""

    def _credential(self, broker: str, option: str) -> tuple[Grant, Any]:
        """The task's grant from `broker` and the broker's plan; implemented by Invocation."""
        raise NotImplementedError

    def boto3_session(self) -> boto3.Session:
        """A boto3 session with this task's AWS credentials and region (no profile is read)."""
        from nhi_invoke.brokers.aws import sdk  # noqa: PLC0415

        grant, plan = self._credential("aws", "aws_role_arn")
        return sdk.session(grant, plan.region)

    def google_credentials(self) -> google.oauth2.credentials.Credentials:
        """google-auth credentials with this task's GCP access token (they do not refresh)."""
        from nhi_invoke.brokers.gcp import sdk  # noqa: PLC0415

        grant, _ = self._credential("gcp", "gcp_provider")
        return sdk.credentials(grant)

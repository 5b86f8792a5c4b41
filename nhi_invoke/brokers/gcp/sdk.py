"""The GCP credential of a Python API task as google-auth credentials (imported only here)."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from nhi_invoke.brokers.grants import Grant

if TYPE_CHECKING:
    import google.oauth2.credentials


def credentials(grant: Grant) -> google.oauth2.credentials.Credentials:
    """google-auth credentials holding exactly this access token, until it expires.

    They cannot refresh (nothing here can mint another token): a task that outlives them opens
    a new invocation.
    """
    import google.oauth2.credentials  # noqa: PLC0415 - only when a task asks for them

    token = grant.environment["CLOUDSDK_AUTH_ACCESS_TOKEN"].reveal()
    # google-auth compares expiry with a naive UTC clock.
    expiry = grant.expires_at.astimezone(UTC).replace(tzinfo=None)
    return google.oauth2.credentials.Credentials(token=token, expiry=expiry)

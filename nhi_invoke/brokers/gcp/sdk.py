"""The GCP credential of a Python API task as google-auth credentials (imported only here)."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from nhi_invoke.brokers.grants import Grant
from nhi_invoke.errors import ConfigError

if TYPE_CHECKING:
    import google.oauth2.credentials


def credentials(grant: Grant) -> google.oauth2.credentials.Credentials:
    """google-auth credentials holding exactly this access token, until it expires.

    They cannot refresh (nothing here can mint another token): a task that outlives them opens
    a new invocation.
    """
    try:
        import google.oauth2.credentials  # noqa: PLC0415 - only when a task asks for them
    except ImportError as missing:
        # nhi-invoke itself does not need google-auth: the task's code does.
        raise ConfigError(
            "google_credentials() needs google-auth, which is not installed",
            "pip install google-auth (or use the token in inv.env's CLOUDSDK_AUTH_ACCESS_TOKEN)",
        ) from missing

    token = grant.environment["CLOUDSDK_AUTH_ACCESS_TOKEN"].reveal()
    # google-auth compares expiry with a naive UTC clock.
    expiry = grant.expires_at.astimezone(UTC).replace(tzinfo=None)
    return google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
        token=token, expiry=expiry
    )

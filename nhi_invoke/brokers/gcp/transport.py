"""google-auth's transport interface on `nhi_invoke.net`, the one HTTP seam.

Only an adapter: every byte goes through `net.request`, so the proxies, CA bundles and
deadlines set there apply to the GCP exchange too. google-auth's `requests` transport costs
~20 ms of imports and hides the status of a failed call; this one adds the
`X-Goog-Request-Reason` header that carries the invocation id to every exchange call, and
remembers what the last call answered, so that the broker can tell a refusal from a
transient failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import google.auth.exceptions
import google.auth.transport

from nhi_invoke import net
from nhi_invoke.retry import Retryable

REASON_HEADER = "X-Goog-Request-Reason"


class _Response(google.auth.transport.Response):
    def __init__(self, status: int, data: bytes) -> None:
        self._status = status
        self._data = data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return {}

    @property
    def data(self) -> bytes:
        return self._data


class ReasonedRequest(google.auth.transport.Request):
    """A google-auth Request that states why every call is made."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.last_status: int | None = None

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> google.auth.transport.Response:
        self.last_status = None
        data = body.encode() if isinstance(body, str) else body
        try:
            resp = net.request(
                method,
                url,
                body=data,
                headers={**(headers or {}), REASON_HEADER: self.reason},
                timeout=timeout or net.DEFAULT_TIMEOUT_SECONDS,
            )
        except Retryable as failure:
            raise google.auth.exceptions.TransportError(failure.what) from failure
        self.last_status = resp.status
        return _Response(resp.status, resp.body)

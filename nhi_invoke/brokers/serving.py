"""What a broker provides under `--serve`: an endpoint, in a protocol its SDKs already read,
serving a grant that is re-issued near its expiry. Imported only when something is served
(`--serve`, or a broker whose plan is `always_served`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from nhi_invoke.brokers.grants import Grant, GrantRecorder, Secret, TokenSupplier


@dataclass(frozen=True)
class Reply:
    """An endpoint's answer to one request."""

    status: int
    content_type: str
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


class CurrentGrant(Protocol):
    """The credential an endpoint serves: re-issued when it is about to expire."""

    @property
    def current(self) -> Grant:
        """The latest grant, as it is."""
        ...

    def get(self) -> Grant:
        """The latest grant, re-issued first if it has less than the margin left."""
        ...

    # For an endpoint that issues grants of its own beyond this one (one per resource a
    # command asks for): the margin it re-issues them at, fresh OIDC tokens for its broker's
    # audience, and the recorder each of them must go through the moment it exists.
    @property
    def margin_seconds(self) -> float: ...

    @property
    def tokens(self) -> TokenSupplier: ...

    @property
    def record(self) -> GrantRecorder: ...


class Endpoint(ABC):
    """One broker's credentials served on the loopback host under --serve, in a protocol its
    SDKs already read. Mounted below a random path; stopped when the command exits."""

    @abstractmethod
    def environment(self, base_url: str) -> dict[str, str]:
        """The variables that point the child's SDKs at `base_url` (values are secrets)."""

    @abstractmethod
    def handle(self, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply:
        """Answer a GET for `path`, relative to `base_url` ("" for the base itself), with its
        query parameters (the first value of each)."""

    def secrets(self) -> tuple[Secret, ...]:
        """Secrets of the endpoint itself that the command is given (a header it checks):
        masked on the CI before the command starts."""
        return ()

    def close(self) -> None:
        """Release what the endpoint holds for the command (a folder it made); called when
        the command exits, after the last request. Never raises."""
        return None

"""botocore's own STS endpoint resolution, for comparison: a real STS client in a given
environment, stopped before it sends (tests only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.session
import pytest

# Every variable botocore reads for an STS endpoint.
VARIABLES = (
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)
# Each variant of the endpoint, as the SDKs' variables ask for it.
VARIANTS: tuple[dict[str, str], ...] = (
    {},
    {"AWS_USE_FIPS_ENDPOINT": "true"},
    {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
    {"AWS_USE_FIPS_ENDPOINT": "TRUE", "AWS_USE_DUALSTACK_ENDPOINT": "True"},
)

Resolver = Callable[[Mapping[str, str], str], "str | type[Exception]"]


class _Sent(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def _stop(request: Any, **_: Any) -> None:
    raise _Sent(request.url)


def botocore_resolver(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Resolver:
    """`resolve(environ, region)`: the URL botocore's STS client sends to (no trailing
    slash), or the type of the exception botocore raises instead."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "none"))
    for name in (*VARIABLES, "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # One session: it reads the variables when each client is created (a session per case
    # would cost minutes).
    session = botocore.session.Session()

    def resolve(environ: Mapping[str, str], region: str) -> str | type[Exception]:
        for name in VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        try:
            client = session.create_client(
                "sts", region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
            )
            client.meta.events.register("before-send", _stop)
            client.get_caller_identity()
        except _Sent as sent:
            return sent.url.rstrip("/")
        except botocore.exceptions.BotoCoreError as error:
            return type(error)
        raise AssertionError("botocore sent nothing")

    return resolve

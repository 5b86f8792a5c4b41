"""What the Python API's end-to-end tests share: an agent runtime's environment (no CI; the
sandbox's clouds), OIDC tokens from the sandbox issuer's token endpoint (as a runtime's
callable would fetch them from its identity provider), and moto's IAM enforcement switch."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.runs import note_secrets

# The sandbox's variables that point SDKs and nhi-invoke at its clouds (not the CI's).
CLOUD_VARIABLES = (
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_IAM",
    "AWS_EC2_METADATA_DISABLED",
    "NHI_GCP_STS_ENDPOINT",
    "NHI_GCP_IAMCREDENTIALS_ENDPOINT",
)


def runtime_environ(
    base_env: dict[str, str], sandbox: dict[str, Any], tmp_path: Path
) -> dict[str, str]:
    """A long-lived process outside CI: the sandbox's clouds, a ledger of its own."""
    clouds = {k: v for k, v in sandbox["environ"].items() if k in CLOUD_VARIABLES}
    return base_env | clouds | {"NHI_LEDGER": str(tmp_path / "ledger.jsonl")}


def fetch_token(sandbox: dict[str, Any], audience: str) -> str:
    """A signed OIDC token for `audience` from the sandbox issuer (GitHub's token protocol)."""
    url = f"{sandbox['token_request_url']}&audience={urllib.parse.quote(audience, safe='')}"
    bearer = sandbox["environ"]["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    request = urllib.request.Request(url, headers={"Authorization": f"bearer {bearer}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        token = str(json.load(answer)["value"])
    note_secrets(token)
    return token


def token_supplier(sandbox: dict[str, Any]) -> Callable[[str], str]:
    """`token=` for the API: a fresh token for each audience asked."""

    def supply(audience: str) -> str:
        return fetch_token(sandbox, audience)

    return supply


@contextmanager
def iam_enforced(sandbox: dict[str, Any]) -> Iterator[None]:
    """moto evaluates IAM policies (deny and allow) while inside; minting must happen before:
    its web-identity call fails with enforcement on (docs: PITFALLS)."""

    def switch(on: bool) -> None:
        request = urllib.request.Request(
            f"{sandbox['aws_endpoint']}/moto-api/reset-auth",
            data=b"0" if on else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},  # moto reads the body raw
        )
        urllib.request.urlopen(request, timeout=10).close()

    switch(True)
    try:
        yield
    finally:
        switch(False)

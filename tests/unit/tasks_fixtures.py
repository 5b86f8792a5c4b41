"""What the Python API tests share: the fake broker (registered as a plug-in, as a user's would
be) against a real secrets service on 127.0.0.1 that issues and revokes tokens, and OIDC tokens
from a callable (`token=`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_broker.service import SecretsService
from tests.tokens import unsigned_token

MODULE = "tests.fake_broker.declaration"


def oidc_token(audience: str) -> str:
    """A well-formed OIDC token for the audience (the fake service trusts its `sub`)."""
    return unsigned_token(now=time.time(), aud=audience, sub="agent-runtime")


@pytest.fixture
def secrets_service() -> Iterator[SecretsService]:
    with SecretsService() as running:
        yield running


@pytest.fixture
def task_environ(tmp_path: Path) -> dict[str, str]:
    """A process environment with no CI, the fake broker registered, the ledger in tmp_path."""
    return {
        "NHI_BROKER_MODULES": MODULE,
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "NHI_LEDGER": str(tmp_path / "ledger.jsonl"),
    }


@pytest.fixture
def task_settings(secrets_service: SecretsService, task_environ: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments of an invocation with the fake broker."""
    return {"fake_url": secrets_service.url, "token": oidc_token, "environ": task_environ}


def events(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def of(tmp_path: Path, invocation_id: str) -> list[dict[str, Any]]:
    """The ledger events of one invocation."""
    return [e for e in events(tmp_path) if e["invocation_id"] == invocation_id]


def live(service: SecretsService) -> dict[str, bool]:
    """Accessor -> whether its token still works."""
    return {accessor: state["live"] for accessor, state in service.state().items()}


def accessor(principal: str) -> str:
    """The fake broker's principal is `fake:<accessor>`."""
    return principal.removeprefix("fake:")

"""`--debug`: nhi-invoke's own debug lines, and none from the SDKs (their debug output can
carry request bodies, and so tokens)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.runs import run_nhi
from tests.fault_proxy import Fault, FaultProxy

pytestmark = pytest.mark.e2e


def test_debug_shows_our_lines_and_keeps_every_library_at_warning(
    proxied_env: dict[str, str], sandbox: dict[str, Any], proxies: dict[str, FaultProxy]
) -> None:
    proxies["issuer"].script(Fault("status", status=429))  # one retry of ours to show
    result = run_nhi(
        [
            "run",
            "--debug",
            "--step-id",
            "debugging",
            "--aws-oidc-role-arn",
            sandbox["entry_role_arn"],
            "--aws-role-arn",
            sandbox["target_role_arn"],
            "--aws-revoke",
            "--gcp-provider",
            sandbox["gcp_provider"],
            "--gcp-service-account",
            sandbox["gcp_service_account"],
            "--",
            "true",
        ],
        proxied_env,
    )
    assert result.code == 0, result.stderr
    loggers = set(re.findall(r"^nhi-invoke: DEBUG (\S+):", result.stderr, re.MULTILINE))
    assert loggers == {"nhi_invoke.cli", "nhi_invoke.retry"}
    assert "nhi-invoke: DEBUG nhi_invoke.cli: non-dumpable: yes" in result.stderr.splitlines()
    assert not re.search(r"DEBUG (?!nhi_invoke)", result.stderr)

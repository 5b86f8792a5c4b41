"""Faults on the wire, through a proxy in front of the emulators: retried when worth it,
bounded by --timeout, classified, visible with --debug and counted in the ledger."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.runs import ledger_events, run_nhi
from tests.fault_proxy import Fault, FaultProxy

pytestmark = pytest.mark.e2e
WEB_IDENTITY = "Action=AssumeRoleWithWebIdentity"
ACCESS_DENIED = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
    b"<Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to "
    b"perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>"
)


def _aws(sandbox: dict[str, Any]) -> list[str]:
    return ["--step-id", "faulty", "--aws-role-arn", sandbox["target_role_arn"]]


@pytest.mark.parametrize(
    "fault",
    [
        Fault("throttle", match=WEB_IDENTITY),
        Fault("status", status=503, match=WEB_IDENTITY),
        Fault("status", status=500, body=b"<html>oops</html>", match=WEB_IDENTITY),
        Fault("reset", match=WEB_IDENTITY),
        Fault("truncate", match=WEB_IDENTITY),
        Fault("malformed", match=WEB_IDENTITY),
    ],
    ids=lambda f: f.kind + (str(f.status) if f.kind == "status" else ""),
)
def test_transient_sts_faults_are_retried_and_counted(
    fault: Fault,
    proxied_env: dict[str, str],
    sandbox: dict[str, Any],
    proxies: dict[str, FaultProxy],
) -> None:
    proxies["aws"].script(fault, fault)
    result = run_nhi(["run", *_aws(sandbox), "--", "true"], proxied_env)
    assert result.code == 0, result.stderr
    assert proxies["aws"].injected == [fault.kind, fault.kind]
    assert ledger_events(proxied_env)[-1]["retries"] == 2


def test_a_hung_answer_is_bounded_by_the_timeout(
    proxied_env: dict[str, str], sandbox: dict[str, Any], proxies: dict[str, FaultProxy]
) -> None:
    proxies["aws"].script(*[Fault("hang", seconds=20, match=WEB_IDENTITY)] * 10)
    started = time.monotonic()
    result = run_nhi(["run", *_aws(sandbox), "--timeout", "3", "--", "true"], proxied_env)
    elapsed = time.monotonic() - started
    assert result.code == 69
    assert "AssumeRoleWithWebIdentity failed after" in result.stderr
    assert "no answer" in result.stderr
    assert elapsed < 10  # the bound (3 s) plus process start, not 10 hangs of 20 s


def test_sts_down_for_good_gives_69_with_what_was_tried(
    proxied_env: dict[str, str], sandbox: dict[str, Any], proxies: dict[str, FaultProxy]
) -> None:
    proxies["aws"].script(*[Fault("status", status=503, match=WEB_IDENTITY)] * 20)
    result = run_nhi(["run", *_aws(sandbox), "--timeout", "20", "--", "true"], proxied_env)
    assert result.code == 69
    assert len(result.stderr.splitlines()) == 1
    assert "after 6 tries" in result.stderr
    assert not [e for e in ledger_events(proxied_env) if e["event"] == "credential.issued"]


def test_access_denied_is_not_retried(
    proxied_env: dict[str, str], sandbox: dict[str, Any], proxies: dict[str, FaultProxy]
) -> None:
    proxies["aws"].script(Fault("status", status=403, body=ACCESS_DENIED, match=WEB_IDENTITY))
    result = run_nhi(["run", *_aws(sandbox), "--", "true"], proxied_env)
    assert result.code == 77
    assert proxies["aws"].injected == ["status"]
    assert proxies["aws"].forwarded == 0


def test_the_token_endpoint_is_retried_and_each_retry_shows_with_debug(
    proxied_env: dict[str, str], sandbox: dict[str, Any], proxies: dict[str, FaultProxy]
) -> None:
    proxies["issuer"].script(Fault("status", status=429), Fault("reset"))
    result = run_nhi(["run", "--debug", *_aws(sandbox), "--", "true"], proxied_env)
    assert result.code == 0, result.stderr
    retries = [line for line in result.stderr.splitlines() if "retry" in line]
    assert len(retries) == 2
    assert "HTTP 429" in retries[0]


def test_gcp_exchange_and_impersonation_are_retried(
    proxied_env: dict[str, str], sandbox: dict[str, Any], proxies: dict[str, FaultProxy]
) -> None:
    proxies["gcp"].script(
        Fault("status", status=503, match="/v1/token"), Fault("reset", match="generateAccessToken")
    )
    result = run_nhi(
        [
            "run",
            "--step-id",
            "gcp-faults",
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
    assert proxies["gcp"].injected == ["status", "reset"]
    assert ledger_events(proxied_env)[-1]["retries"] == 2

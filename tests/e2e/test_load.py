"""Load: 50 concurrent invocations on this 2-core machine, a quarter of STS calls throttled.

Run with `-s` to see the figures the README quotes:
    pytest tests/e2e/test_load.py -s
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.runs import NHI, deny_policies, ledger_events, ledger_path, run_nhi

pytestmark = pytest.mark.e2e
INVOCATIONS = 50
THROTTLED_SHARE = 0.25


def test_fifty_concurrent_invocations_with_throttling_lose_nothing(
    proxied_env: dict[str, str],
    sandbox: dict[str, Any],
    proxies: dict[str, Any],
) -> None:
    proxies["aws"].throttle(THROTTLED_SHARE, "Action=AssumeRole")  # both STS hops

    def one(index: int) -> tuple[int, float, str]:
        started = time.monotonic()
        done = subprocess.run(
            [
                NHI,
                "run",
                "--quiet",
                "--step-id",
                f"load-{index}",
                "--aws-oidc-role-arn",
                sandbox["entry_role_arn"],
                "--aws-role-arn",
                sandbox["target_role_arn"],
                "--aws-revoke",
                "--",
                "true",
            ],
            env=proxied_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return done.returncode, time.monotonic() - started, done.stderr

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=INVOCATIONS) as pool:
        results = list(pool.map(one, range(INVOCATIONS)))
    wall = time.monotonic() - started
    codes = [code for code, _, _ in results]
    assert codes == [0] * INVOCATIONS, [err for code, _, err in results if code][:3]

    verify = run_nhi(["audit", "verify", str(ledger_path(proxied_env))], proxied_env)
    assert verify.code == 0, verify.stderr
    events = ledger_events(proxied_env)
    sessions = {
        e["principal_id"]
        for e in events
        if e["event"] == "credential.issued" and e["purpose"] == "child"
    }
    revoked = {e["principal_id"] for e in events if e["event"] == "credential.revoked"}
    assert len(sessions) == INVOCATIONS
    assert revoked == sessions
    assert sessions <= set(deny_policies(sandbox).values())
    throttles = proxies["aws"].injected.count("throttle")
    assert throttles > 0
    assert sum(e["retries"] for e in events if e["event"] == "invocation.finished") >= throttles

    latencies = sorted(latency for _, latency, _ in results)
    figures = {
        "invocations": INVOCATIONS,
        "succeeded": codes.count(0),
        "throttled_calls": throttles,
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(latencies[int(0.95 * len(latencies)) - 1], 2),
        "wall_s": round(wall, 1),
        "per_second": round(INVOCATIONS / wall, 2),
        "ledger_lines": len(events),
    }
    print("\nload:", json.dumps(figures))

"""One long-lived process running many tasks through the Python API, measuring what it holds
before and after: threads, open file descriptors, temporary files, open invocations, memory.

Run by tests/e2e/test_agents_resources.py as a process of its own (with a private TMPDIR),
so that nothing of pytest's is counted. `argv[1]` is a JSON object: the sandbox's roles and
token endpoint, the environment, the ledger. Prints one JSON object of measurements.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

import nhi_invoke
from nhi_invoke.tasks.lifetime import open_count

SEQUENTIAL = 100
CONCURRENT = 20  # half in threads, half as asyncio tasks, all at once

given: dict[str, Any] = json.loads(sys.argv[1])


def token(audience: str) -> str:
    url = f"{given['token_url']}&audience={urllib.parse.quote(audience, safe='')}"
    request = urllib.request.Request(url, headers={"Authorization": f"bearer {given['bearer']}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["value"])


def settings(name: str, *, revoke: bool) -> dict[str, Any]:
    return {
        "task_id": name,
        "agent": "resource-probe",
        "aws_role_arn": given["target_role_arn"],
        "aws_oidc_role_arn": given["entry_role_arn"],
        "aws_revoke": revoke,
        "token": token,
        "environ": given["environ"],
    }


def held() -> dict[str, Any]:
    """What the process holds now."""
    descriptors = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            descriptors[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
    temporary = sorted(
        os.path.join(root, name)
        for root, _dirs, files in os.walk(tempfile.gettempdir())
        for name in files
    )
    return {
        "threads": sorted(t.name for t in threading.enumerate()),
        "fds": descriptors,
        "temp_files": temporary,
        "open_invocations": open_count(),
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_kb": _rss_kb(),
    }


def _rss_kb() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() // 1024


def one(name: str, *, revoke: bool) -> None:
    with nhi_invoke.invocation(**settings(name, revoke=revoke)) as inv:
        assert inv.env["AWS_SESSION_TOKEN"]


async def one_async(name: str) -> None:
    async with nhi_invoke.invocation(**settings(name, revoke=True)) as inv:
        assert inv.env["AWS_SESSION_TOKEN"]
        await asyncio.sleep(0.05)


async def concurrent_tasks(count: int) -> None:
    await asyncio.gather(*(one_async(f"async-{i}") for i in range(count)))


def main() -> None:
    # First use imports the SDK parts and fills caches: not what a task leaves behind.
    one("warm-up", revoke=True)
    before = held()
    started = time.monotonic()
    for index in range(SEQUENTIAL):
        one(f"seq-{index}", revoke=index % 4 == 0)
    sequential_seconds = time.monotonic() - started
    started = time.monotonic()
    threads = [
        threading.Thread(target=one, args=(f"thread-{i}",), kwargs={"revoke": True})
        for i in range(CONCURRENT // 2)
    ]
    for thread in threads:
        thread.start()
    asyncio.run(concurrent_tasks(CONCURRENT - len(threads)))
    for thread in threads:
        thread.join()
    concurrent_seconds = time.monotonic() - started
    after = held()
    print(
        json.dumps(
            {
                "before": before,
                "after": after,
                "sequential": SEQUENTIAL,
                "concurrent": CONCURRENT,
                "sequential_seconds": round(sequential_seconds, 2),
                "concurrent_seconds": round(concurrent_seconds, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

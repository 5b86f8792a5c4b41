"""What one agent task's invocation costs in a long-lived process (the Python API), against the
sandbox's emulators on 127.0.0.1: wall and CPU time per task, chained, with and without
`aws_revoke`, and the process's memory after many tasks.

    python benchmarks/agents.py [--tasks 40]

Starts `nhi-invoke sandbox --ready-file` itself (from the dev environment, which has the
sandbox extra) and stops it at the end. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _rss_kb() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() // 1024


def measure(ready: dict[str, Any], workdir: Path, tasks: int) -> dict[str, Any]:
    import nhi_invoke  # noqa: PLC0415 - after the sandbox is up, as an agent would

    def token(audience: str) -> str:
        url = f"{ready['token_request_url']}&audience={urllib.parse.quote(audience, safe='')}"
        bearer = ready["environ"]["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
        request = urllib.request.Request(url, headers={"Authorization": f"bearer {bearer}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(json.load(answer)["value"])

    clouds = ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_IAM", "AWS_EC2_METADATA_DISABLED")
    environ = {name: ready["environ"][name] for name in clouds} | {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(workdir),
        "NHI_LEDGER": str(workdir / "ledger.jsonl"),
    }
    results: dict[str, Any] = {"tasks": tasks, "rss_kb_start": _rss_kb()}
    for revoke in (False, True):
        walls, cpus = [], []
        for index in range(tasks + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            with nhi_invoke.invocation(
                task_id=f"bench-{index}",
                agent="bench",
                aws_role_arn=ready["target_role_arn"],
                aws_oidc_role_arn=ready["entry_role_arn"],
                aws_revoke=revoke,
                token=token,
                environ=environ,
            ):
                pass
            if index:  # the first pays for imports
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
        name = "revoked" if revoke else "expiring"
        results[name] = {
            "median_wall_ms": round(statistics.median(walls) * 1000, 1),
            "median_cpu_ms": round(statistics.median(cpus) * 1000, 1),
            "rss_kb_after": _rss_kb(),
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        ready_file = workdir / "ready.json"
        sandbox = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "nhi-invoke"), "sandbox", "--quiet",
             "--ready-file", str(ready_file)],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            while not ready_file.exists() or not ready_file.stat().st_size:
                if sandbox.poll() is not None:
                    raise SystemExit("the sandbox did not start")
                time.sleep(0.05)
            time.sleep(0.05)
            print(json.dumps(measure(json.loads(ready_file.read_text()), workdir, args.tasks)))
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())

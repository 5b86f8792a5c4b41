"""How fast the --serve endpoints answer while a credential is being re-issued.

    python benchmarks/serve_latency.py [--requests 3000] [--sts-delay 2.0] [--nhi PATH]

Starts `nhi-invoke sandbox`, puts a proxy in front of its STS (and GCP STS) that holds every
token exchange for `--sts-delay` seconds (a slow cloud), and runs `nhi-invoke run --serve`
with a refresh margin that keeps a re-issue under way most of the time. The step's command
asks the endpoint for credentials `--requests` times, each on a new connection as the SDKs'
container and metadata providers do, and records when each request started and how long
its answer took. A request counts as "during a re-issue" when it was under way at any moment
between the proxy receiving an exchange and answering it (so a request that waited for an
exchange counts, as one served while an exchange ran in the background does). Prints
p50/p99/max per cloud and writes benchmarks/serve_latency.json. Everything talks to
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from run import start_sandbox  # noqa: E402

from tests.fault_proxy import FaultProxy  # noqa: E402

NHI = str(ROOT / ".venv" / "bin" / "nhi-invoke")  # --nhi: another build's, to compare

# The step's command: asks its endpoint N times; one JSON list of [started, seconds] out.
PROBE = r"""
import http.client, json, os, sys, time, urllib.parse
out, count = sys.argv[1], int(sys.argv[2])
if "AWS_CONTAINER_CREDENTIALS_FULL_URI" in os.environ:
    url = urllib.parse.urlsplit(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
    path = url.path
    headers = {"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}
else:
    url = urllib.parse.urlsplit("http://" + os.environ["GCE_METADATA_HOST"])
    path = url.path + "/computeMetadata/v1/instance/service-accounts/default/token"
    headers = {"Metadata-Flavor": "Google"}
samples = []
for _ in range(count):
    started = time.time()
    clock = time.perf_counter()
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    connection.request("GET", path, headers=headers)
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200, answer.status
    connection.close()
    samples.append([started, time.perf_counter() - clock])
    time.sleep(0.01)
with open(out, "w") as handle:
    json.dump(samples, handle)
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 2),
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


def measure(
    nhi: str,
    cloud: str,
    info: dict[str, Any],
    proxy: FaultProxy,
    workdir: Path,
    requests: int,
) -> dict[str, Any]:
    out = workdir / f"{cloud}-samples.json"
    runner_temp = workdir / f"{cloud}-runner-temp"
    runner_temp.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "RUNNER_TEMP": str(runner_temp),
        **info["environ"],
    }
    if cloud == "aws":
        env["AWS_ENDPOINT_URL_STS"] = proxy.url
        options = ["--aws-role-arn", info["target_role_arn"], "--refresh-margin", "898"]
    else:
        env["NHI_GCP_STS_ENDPOINT"] = proxy.url
        options = [
            "--gcp-provider",
            info["gcp_provider"],
            "--gcp-service-account",
            info["gcp_service_account"],
            "--gcp-lifetime",
            "60",
            "--refresh-margin",
            "58",
        ]
    proxy.delayed.clear()
    probe = [sys.executable, "-c", PROBE, str(out), str(requests)]
    subprocess.run(
        [nhi, "run", "--quiet", "--serve", "--step-id", "bench-serve", *options, "--", *probe],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    samples = json.loads(out.read_text())
    windows = list(proxy.delayed)

    def overlaps(started: float, seconds: float) -> bool:
        return any(started <= b and started + seconds >= a for a, b in windows)

    during = [s for t, s in samples if overlaps(t, s)]
    outside = [s for t, s in samples if not overlaps(t, s)]
    return {
        "reissues": len(windows),
        "during_reissue": summary(during),
        "otherwise": summary(outside),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sts-delay", type=float, default=2.0)
    parser.add_argument("--nhi", default=NHI, help="the nhi-invoke to measure")
    parser.add_argument("--output", default=str(HERE / "serve_latency.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {
        "nhi": args.nhi,
        "requests": args.requests,
        "sts_delay_s": args.sts_delay,
        "load_average": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        sandbox, info = start_sandbox(workdir)
        try:
            with FaultProxy(info["aws_endpoint"]) as aws, FaultProxy(info["gcp_endpoint"]) as gcp:
                aws.delay(args.sts_delay, "AssumeRoleWithWebIdentity")
                gcp.delay(args.sts_delay, "/v1/token")
                results["aws"] = measure(args.nhi, "aws", info, aws, workdir, args.requests)
                results["gcp"] = measure(args.nhi, "gcp", info, gcp, workdir, args.requests)
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(timeout=20)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

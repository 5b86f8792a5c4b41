"""Compare two builds of nhi-invoke, interleaved, against one sandbox.

    python benchmarks/ab.py --before OLD/bin/nhi-invoke --after NEW/bin/nhi-invoke [--rounds 30]

`run.py` measures one build against the baselines; between two of its runs the machine's load
moves absolute figures by ±15%, too much to see a change of a few percent. Here both builds
run every case in the same round, in alternating order, against the same emulators, so the
load they meet is the same; the medians' ratio is the change. Everything talks to 127.0.0.1.
Build each side with e.g. `python -m venv OLD && OLD/bin/pip install --find-links
.wheelhouse <checkout>` (a non-editable install, as users run it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="the old build's nhi-invoke")
    parser.add_argument("--after", required=True, help="the new build's nhi-invoke")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        ready = work / "ready.json"
        sandbox = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "nhi-invoke"), "sandbox", "--quiet", "--ready-file",
             str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            while not ready.exists() or not ready.stat().st_size:
                time.sleep(0.05)
            time.sleep(0.2)
            info = json.loads(ready.read_text())
            env = dict(os.environ) | info["environ"] | {"RUNNER_TEMP": str(work)}
            medians = _measure(args.before, args.after, args.rounds, env, info)
        finally:
            os.killpg(sandbox.pid, signal.SIGTERM)
            sandbox.wait(timeout=30)
    for case, (before, after) in medians.items():
        print(f"{case:28s} before {before:7.1f} ms  after {after:7.1f} ms  {after / before:.3f}")


def _measure(
    before: str, after: str, rounds: int, env: dict[str, str], info: dict[str, str]
) -> dict[str, tuple[float, float]]:
    aws = ["--aws-role-arn", info["target_role_arn"]]
    chain = ["--aws-oidc-role-arn", info["entry_role_arn"], *aws]
    gcp = ["--gcp-provider", info["gcp_provider"], "--gcp-service-account",
           info["gcp_service_account"]]  # fmt: skip
    run = ["run", "--quiet", "--step-id", "bench"]
    cases = {
        "nhi-invoke --version": ["--version"],
        "nhi-invoke run --dry-run": ["run", "--dry-run", "--json", *aws, "--", "true"],
        "run (AWS single hop)": [*run, *aws, "--", "true"],
        "run (AWS chained)": [*run, *chain, "--", "true"],
        "run (GCP)": [*run, *gcp, "--", "true"],
        "run (AWS + GCP)": [*run, *aws, *gcp, "--", "true"],
    }
    builds = [("before", before), ("after", after)]
    samples: dict[tuple[str, str], list[float]] = {}
    for number in range(rounds + 2):  # two warm-up rounds
        for case, argv in cases.items():
            for name, program in builds if number % 2 else builds[::-1]:
                started = time.perf_counter()
                subprocess.run([program, *argv], env=env, stdout=subprocess.DEVNULL, check=True)
                if number >= 2:
                    elapsed = (time.perf_counter() - started) * 1000
                    samples.setdefault((case, name), []).append(elapsed)
    return {
        case: (
            statistics.median(samples[(case, "before")]),
            statistics.median(samples[(case, "after")]),
        )
        for case in cases
    }


if __name__ == "__main__":
    main()

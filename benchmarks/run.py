"""Measure nhi-invoke against the baselines, side by side, against the local emulators.

    python benchmarks/run.py [--rounds 15]

Installs nhi-invoke (not editable) into benchmarks/.venv from the local wheelhouse, starts
`nhi-invoke sandbox` for the emulators, then runs every case once per round, interleaved,
and reports medians and ratios; then 50 concurrent invocations and the peak memory of one.
Writes benchmarks/results.json. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"


def bench_venv() -> Path:
    """A clean, non-editable install: what users run (an editable install adds ~15 ms)."""
    python = VENV / "bin" / "python"
    pip = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--find-links",
        str(ROOT / ".wheelhouse"),
    ]
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        # `packaging` is for the google-auth baseline's urllib3 transport, not for nhi-invoke.
        subprocess.run([*pip, str(ROOT), "packaging"], check=True)
    else:  # the checkout as it is now
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=True)
    return VENV / "bin"


def start_sandbox(workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    ready = workdir / "ready.json"
    sandbox = ROOT / ".venv" / "bin" / "nhi-invoke"  # the dev venv has the sandbox extra
    proc = subprocess.Popen(
        [str(sandbox), "sandbox", "--quiet", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    while not ready.exists() or not ready.stat().st_size:
        time.sleep(0.05)
    time.sleep(0.1)
    return proc, json.loads(ready.read_text())


def cases(bin_dir: Path, info: dict[str, str]) -> dict[str, list[str]]:
    nhi, py = str(bin_dir / "nhi-invoke"), str(bin_dir / "python")
    aws = ["--aws-role-arn", info["target_role_arn"]]
    chain = ["--aws-oidc-role-arn", info["entry_role_arn"], *aws]
    gcp = [
        "--gcp-provider",
        info["gcp_provider"],
        "--gcp-service-account",
        info["gcp_service_account"],
    ]
    run = [nhi, "run", "--quiet", "--step-id", "bench"]
    found = {
        "python -c pass (floor)": [py, "-c", "pass"],
        "nhi-invoke --version": [nhi, "--version"],
        "nhi-invoke run --dry-run": [nhi, "run", "--dry-run", "--json", *aws, "--", "true"],
        "nhi-invoke run (AWS single hop)": [*run, *aws, "--", "true"],
        "baseline: urllib + boto3, single hop": [py, str(HERE / "baseline_boto3.py"), "--single"],
        "nhi-invoke run (AWS chained)": [*run, *chain, "--", "true"],
        "baseline: urllib + boto3, chained": [py, str(HERE / "baseline_boto3.py"), "--chained"],
        "nhi-invoke run (GCP)": [*run, *gcp, "--", "true"],
        "baseline: google-auth (urllib3)": [py, str(HERE / "baseline_google_auth.py")],
        "nhi-invoke run (AWS + GCP)": [*run, *aws, *gcp, "--", "true"],
    }
    if shutil.which("aws"):
        found["baseline: AWS CLI"] = ["bash", str(HERE / "baseline_awscli.sh")]
    return found


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def peak_rss_mb(argv: list[str], env: dict[str, str]) -> float:
    """The largest resident set of the command and its children, from the kernel's count."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
        ".ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv], env=env, capture_output=True, text=True, check=True
    ).stdout
    return round(int(out) / 1024, 1)


def fan_out(argv: list[str], env: dict[str, str], count: int) -> dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        latencies = sorted(pool.map(lambda _: timed(argv, env), range(count)))
    wall = time.perf_counter() - started
    return {
        "count": count,
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[int(0.95 * count) - 1], 3),
        "per_second": round(count / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    bin_dir = bench_venv()
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        proc, info = start_sandbox(workdir)
        try:
            env = (
                dict(os.environ)
                | info["environ"]
                | {
                    "RUNNER_TEMP": str(workdir),
                    "PATH": f"{bin_dir}:{os.environ['PATH']}",
                    "BENCH_TARGET_ROLE": info["target_role_arn"],
                    "BENCH_ENTRY_ROLE": info["entry_role_arn"],
                    "BENCH_GCP_PROVIDER": info["gcp_provider"],
                    "BENCH_GCP_ACCOUNT": info["gcp_service_account"],
                    "AWS_ACCESS_KEY_ID": "unused",
                    "AWS_SECRET_ACCESS_KEY": "unused",
                }
            )
            table = cases(bin_dir, info)
            samples: dict[str, list[float]] = {name: [] for name in table}
            for round_number in range(args.rounds + 2):  # two warm-up rounds
                for name, argv in table.items():
                    elapsed = timed(argv, env)
                    if round_number >= 2:
                        samples[name].append(elapsed)
            medians = {name: statistics.median(v) * 1000 for name, v in samples.items()}
            single = table["nhi-invoke run (AWS single hop)"]
            results = {
                "rounds": args.rounds,
                "machine": f"{os.cpu_count()} cores, {sys.version.split()[0]}",
                "median_ms": {k: round(v, 1) for k, v in medians.items()},
                "fan_out": fan_out(single, env, 50),
                "peak_rss_mb": {
                    "nhi-invoke run (AWS single hop)": peak_rss_mb(single, env),
                    "baseline: urllib + boto3, single hop": peak_rss_mb(
                        table["baseline: urllib + boto3, single hop"], env
                    ),
                },
            }
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    floor = medians["python -c pass (floor)"]
    ratios = {
        "--version / python -c pass": medians["nhi-invoke --version"] / floor,
        "--dry-run / python -c pass": medians["nhi-invoke run --dry-run"] / floor,
        "AWS single hop / boto3 script": medians["nhi-invoke run (AWS single hop)"]
        / medians["baseline: urllib + boto3, single hop"],
        "AWS chained / boto3 script": medians["nhi-invoke run (AWS chained)"]
        / medians["baseline: urllib + boto3, chained"],
        "GCP / google-auth script": medians["nhi-invoke run (GCP)"]
        / medians["baseline: google-auth (urllib3)"],
        "AWS + GCP / slower alone": medians["nhi-invoke run (AWS + GCP)"]
        / max(medians["nhi-invoke run (AWS single hop)"], medians["nhi-invoke run (GCP)"]),
    }
    if "baseline: AWS CLI" in medians:
        ratios["AWS single hop / AWS CLI path"] = (
            medians["nhi-invoke run (AWS single hop)"] / medians["baseline: AWS CLI"]
        )
    results["ratios"] = {k: round(v, 2) for k, v in ratios.items()}
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

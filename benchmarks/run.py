"""Measure nhi-invoke against its floors, the SDK scripts and the Node actions, side by side.

    python benchmarks/run.py [--rounds 15]

Installs nhi-invoke (not editable) into benchmarks/.venv from the local wheelhouse, starts
`nhi-invoke sandbox` for the emulators, then runs every case once per round, interleaved,
and reports medians and each nhi-invoke row as a ratio to its standard-library floor
(floor_aws.py, floor_gcp.py), to the SDK scripts (baseline_*.py) and to the Node actions
when their bundles are in benchmarks/peers/ (BENCHMARKS.md says how to fetch them; never
committed); then 50 concurrent invocations and the peak memory of one. Writes
benchmarks/results.json. Everything talks to 127.0.0.1 only.
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
# The Node peers' bundles, as fetched (their dist/ and action.yml): see BENCHMARKS.md.
PEERS = HERE / "peers"
AWS_PEER = PEERS / "configure-aws-credentials"
GCP_PEER = PEERS / "auth"


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
        # google-auth and `packaging` (for its urllib3 transport) are the google-auth
        # baseline's, not nhi-invoke's.
        subprocess.run([*pip, str(ROOT), "google-auth", "packaging"], check=True)
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


def peer_inputs(peer: Path, given: dict[str, str]) -> dict[str, str]:
    """The INPUT_* variables the runner would give a Node action: its defaults, then `given`."""
    import yaml  # noqa: PLC0415 - the dev venv's

    if not (peer / "action.yml").exists():
        return {}  # not fetched: its rows are not run (cases())
    declared = yaml.safe_load((peer / "action.yml").read_text())["inputs"]
    values = {name: str(spec["default"]) for name, spec in declared.items() if "default" in spec}
    values |= given
    return {f"INPUT_{name.replace(' ', '_').upper()}": value for name, value in values.items()}


def peer_env(workdir: Path, info: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per peer, the variables that point it at the sandbox, as a GitHub runner would."""
    files = {}
    for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STATE", "GITHUB_PATH"):
        path = workdir / name.lower()
        path.touch()
        files[name] = str(path)
    files["GITHUB_WORKSPACE"] = str(workdir)
    # configure-aws-credentials names its session tags from these; the sandbox sets some.
    for name in ("GITHUB_ACTION", "GITHUB_ACTOR", "GITHUB_REPOSITORY", "GITHUB_SHA"):
        files[name] = info["environ"].get(name, "peer")
    files["GITHUB_WORKFLOW"] = info["environ"].get("GITHUB_WORKFLOW", "bench")
    aws = files | peer_inputs(
        AWS_PEER,
        {
            "role-to-assume": info["target_role_arn"],
            "aws-region": "us-east-1",
            "sts-endpoint": info["aws_endpoint"],
            "role-session-name": "peer",
        },
    )
    sts = info["environ"]["NHI_GCP_STS_ENDPOINT"]
    iam = info["environ"]["NHI_GCP_IAMCREDENTIALS_ENDPOINT"]
    gcp = files | peer_inputs(
        GCP_PEER,
        {
            "workload_identity_provider": info["gcp_provider"],
            "service_account": info["gcp_service_account"],
            "token_format": "access_token",
            "access_token_lifetime": "600s",
            "create_credentials_file": "false",
        },
    )
    # google-github-actions/auth reads its endpoints from these (expandUniverseEndpoints).
    gcp |= {
        "GHA_ENDPOINT_OVERRIDE_sts": f"{sts}/v1",
        "GHA_ENDPOINT_OVERRIDE_iamcredentials": f"{iam}/v1",
    }
    return {"aws": aws, "gcp": gcp}


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
        "floor: stdlib AWS single hop": [py, str(HERE / "floor_aws.py")],
        "baseline: urllib + boto3, single hop": [py, str(HERE / "baseline_boto3.py"), "--single"],
        "nhi-invoke run (AWS chained)": [*run, *chain, "--", "true"],
        "floor: stdlib AWS chained": [py, str(HERE / "floor_aws.py"), "--chained"],
        "baseline: urllib + boto3, chained": [py, str(HERE / "baseline_boto3.py"), "--chained"],
        "nhi-invoke run (GCP)": [*run, *gcp, "--", "true"],
        "floor: stdlib GCP": [py, str(HERE / "floor_gcp.py")],
        "baseline: google-auth (urllib3)": [py, str(HERE / "baseline_google_auth.py")],
        "nhi-invoke run (AWS + GCP)": [*run, *aws, *gcp, "--", "true"],
    }
    if shutil.which("aws"):
        found["baseline: AWS CLI"] = ["bash", str(HERE / "baseline_awscli.sh")]
    node = shutil.which("node")
    if node and (AWS_PEER / "dist" / "index.js").exists():
        found["peer: configure-aws-credentials"] = [node, str(AWS_PEER / "dist" / "index.js")]
    if node and (GCP_PEER / "dist" / "main" / "index.js").exists():
        found["peer: google-github-actions/auth"] = [
            node,
            str(GCP_PEER / "dist" / "main" / "index.js"),
        ]
    return found


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    # A Node action reports its failure as an ::error:: line on stdout.
    if done.returncode or b"::error::" in done.stdout:
        raise SystemExit(f"{argv[:2]} failed ({done.returncode}): {done.stdout.decode()[-800:]}")
    return elapsed


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


# Each nhi-invoke row against what it is compared with: its floor, the SDK script, the peer.
COMPARED = {
    "nhi-invoke run (AWS single hop)": (
        "floor: stdlib AWS single hop",
        "baseline: urllib + boto3, single hop",
        "baseline: AWS CLI",
        "peer: configure-aws-credentials",
    ),
    "nhi-invoke run (AWS chained)": (
        "floor: stdlib AWS chained",
        "baseline: urllib + boto3, chained",
    ),
    "nhi-invoke run (GCP)": (
        "floor: stdlib GCP",
        "baseline: google-auth (urllib3)",
        "peer: google-github-actions/auth",
    ),
    "nhi-invoke --version": ("python -c pass (floor)",),
    "nhi-invoke run --dry-run": ("python -c pass (floor)",),
}


def ratios(medians: dict[str, float]) -> dict[str, float]:
    found = {
        f"{row} / {other}": medians[row] / medians[other]
        for row, others in COMPARED.items()
        for other in others
        if other in medians
    }
    slower = max(medians["nhi-invoke run (AWS single hop)"], medians["nhi-invoke run (GCP)"])
    found["nhi-invoke run (AWS + GCP) / slower alone"] = (
        medians["nhi-invoke run (AWS + GCP)"] / slower
    )
    return found


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
            peers = peer_env(workdir, info)
            envs = {
                name: env
                | (peers["aws"] if "configure-aws" in name else {})
                | (peers["gcp"] if "github-actions/auth" in name else {})
                for name in table
            }
            samples: dict[str, list[float]] = {name: [] for name in table}
            for round_number in range(args.rounds + 2):  # two warm-up rounds
                for name, argv in table.items():
                    elapsed = timed(argv, envs[name])
                    if round_number >= 2:
                        samples[name].append(elapsed)
            medians = {name: statistics.median(v) * 1000 for name, v in samples.items()}
            single = table["nhi-invoke run (AWS single hop)"]
            results = {
                "rounds": args.rounds,
                "machine": f"{os.cpu_count()} cores, {sys.version.split()[0]}",
                "load_average": [round(x, 1) for x in os.getloadavg()],
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
    results["ratios"] = {k: round(v, 2) for k, v in ratios(medians).items()}
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

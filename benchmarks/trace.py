"""`nhi-invoke audit trace` at scale: 1,000,000 CloudTrail events in gzipped files, as S3
receives them, against 1,000 invocations in ledgers written by nhi-invoke's own ledger writer.

    python benchmarks/trace.py [--rounds 3] [--files 500] [--keep DIR]

Generates everything in a temporary folder (never committed), runs the installed
`nhi-invoke audit trace LEDGERS --cloudtrail TRAILS --json` as a real process per round, and
reports the wall time and the peak RSS (`wait4`'s ru_maxrss) of each run, and checks the
answer: every planted call attributed, every leak and foreign session flagged. Writes
benchmarks/trace_results.json. Nothing talks to the network.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from nhi_invoke.ledger.records import rfc3339  # noqa: E402
from nhi_invoke.ledger.store import Ledger  # noqa: E402

ACCOUNT = "123456789012"
DAY = datetime(2026, 12, 3, tzinfo=UTC)
ROLES = [f"arn:aws:iam::{ACCOUNT}:role/deploy-{n}" for n in range(3)]
ENTRY = f"arn:aws:iam::{ACCOUNT}:role/ci-entry"
NOISE_ROLES = [f"arn:aws:iam::{ACCOUNT}:role/service-{n}" for n in range(40)]
CALLS_PER_INVOCATION = 10
LEAKS = 50
FOREIGN_CALLS = 500

# One realistic data event (~1.7 kB, as an S3 GetObject record is); fields filled per record.
TEMPLATE = json.dumps(
    {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROA3XFRBF535PLBIFPI4:@SESSION@",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/@ROLENAME@/@SESSION@",
            "accountId": ACCOUNT,
            "accessKeyId": "@KEY@",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROA3XFRBF535PLBIFPI4",
                    "arn": "@ROLE@",
                    "accountId": ACCOUNT,
                    "userName": "@ROLENAME@",
                },
                "attributes": {"creationDate": "@TIME@", "mfaAuthenticated": "false"},
                "sourceIdentity": "@SOURCE@",
            },
        },
        "eventTime": "@TIME@",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.7",
        "userAgent": "[aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.ubuntu.22 command/s3.cp]",
        "requestParameters": {
            "bucketName": "artifacts",
            "Host": "artifacts.s3.us-east-1.amazonaws.com",
            "key": "builds/@ID@/app.tar.gz",
        },
        "responseElements": None,
        "additionalEventData": {
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": "x" * 76,
            "bytesTransferredOut": 52341,
        },
        "requestID": "@ID@",
        "eventID": "@ID@",
        "readOnly": True,
        "resources": [
            {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::artifacts/builds/@ID@/app.tar.gz"},
            {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::artifacts"},
        ],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Data",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "artifacts.s3.us-east-1.amazonaws.com",
        },
    },
    separators=(",", ":"),
)
for field in ("SESSION", "ROLENAME", "ROLE", "KEY", "TIME", "SOURCE", "ID"):
    TEMPLATE = TEMPLATE.replace(f"@{field}@", f"%({field})s")


def _record(**values: str) -> str:
    return TEMPLATE % values


def _name(role: str) -> str:
    return role.rsplit("/", 1)[1]


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(root: Path, invocations: int, events: int, files: int, seed: int) -> dict[str, int]:
    """Ledgers and trails; returns what `audit trace` must find."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    planted: list[tuple[datetime, str]] = []
    for n in range(invocations):
        invocation_id = f"bench{n:07d}"
        start = DAY + timedelta(seconds=rng.randrange(0, 23 * 3600))
        role = ROLES[n % len(ROLES)]
        chained = n % 2 == 0
        session = f"deploy.{n}-1.{invocation_id}"
        ledger = Ledger(
            str(root / "ledgers" / f"job-{n % 20:02d}" / "ledger.jsonl"), invocation_id, "deploy"
        )
        ledger.append("invocation.started", start, ci={"provider": "github", "run_id": str(n)})
        child_key = f"ASIACHILD{n:011d}"
        hops = [("entry", ENTRY, f"ASIAENTRY{n:011d}"), ("child", role, child_key)]
        for purpose, hop_role, key in hops if chained else hops[1:]:
            ledger.append(
                "credential.issued",
                start,
                cloud="aws",
                purpose=purpose,
                principal=f"arn:aws:sts::{ACCOUNT}:assumed-role/{_name(hop_role)}/{session}",
                session_name=session,
                access_key_id=key,
                fingerprint=f"sha256:{purpose}{n}",
                expires_at=rfc3339(start + timedelta(seconds=900)),
                role_arn=hop_role,
                source_identity=invocation_id if chained and purpose == "child" else None,
            )
        ledger.append("command.exited", start + timedelta(seconds=120), exit_code=0)
        ledger.append("invocation.finished", start + timedelta(seconds=121), exit_code=0)
        for call in range(CALLS_PER_INVOCATION):
            at = start + timedelta(seconds=1 + call * 10)
            planted.append(
                (
                    at,
                    _record(
                        SESSION=session,
                        ROLENAME=role.rsplit("/", 1)[1],
                        ROLE=role,
                        KEY=child_key,
                        TIME=_time(at),
                        SOURCE=invocation_id if chained else "",
                        ID=f"{invocation_id}-{call:02d}",
                    ),
                )
            )
        if n < LEAKS:  # the key, used after the command exited
            at = start + timedelta(seconds=400)
            planted.append(
                (
                    at,
                    _record(
                        SESSION=session,
                        ROLENAME=role.rsplit("/", 1)[1],
                        ROLE=role,
                        KEY=child_key,
                        TIME=_time(at),
                        SOURCE="",
                        ID=f"{invocation_id}-leak",
                    ),
                )
            )
    for n in range(FOREIGN_CALLS):  # sessions of managed roles that no ledger knows
        at = DAY + timedelta(seconds=rng.randrange(0, 24 * 3600))
        role = ROLES[n % len(ROLES)]
        planted.append(
            (
                at,
                _record(
                    SESSION="by-hand",
                    ROLENAME=role.rsplit("/", 1)[1],
                    ROLE=role,
                    KEY=f"ASIAFOREIGN{n % 7:09d}",
                    TIME=_time(at),
                    SOURCE="",
                    ID=f"foreign-{n:05d}",
                ),
            )
        )
    noise = events - len(planted)
    records = [
        (
            at,
            _record(
                SESSION=f"svc-{k % 997}",
                ROLENAME=role.rsplit("/", 1)[1],
                ROLE=role,
                KEY=f"ASIANOISE{k % 50021:011d}",
                TIME=_time(at),
                SOURCE="",
                ID=f"noise-{k:08d}",
            ),
        )
        for k in range(noise)
        for at, role in [
            (DAY + timedelta(seconds=(k * 86400) // noise), NOISE_ROLES[k % len(NOISE_ROLES)])
        ]
    ]
    records += planted
    records.sort(key=lambda r: r[0])  # CloudTrail files hold about five minutes each
    per_file = -(-len(records) // files)
    trails = (
        root / "trails" / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-east-1" / "2026" / "12" / "03"
    )
    trails.mkdir(parents=True)
    for f in range(files):
        chunk = records[f * per_file : (f + 1) * per_file]
        if not chunk:
            break
        body = ('{"Records":[' + ",".join(r for _, r in chunk) + "]}").encode()
        name = f"{ACCOUNT}_CloudTrail_us-east-1_20261203T{f:04d}Z_{f:016x}.json.gz"
        (trails / name).write_bytes(gzip.compress(body, compresslevel=6))
    return {
        "events": len(records),
        "attributed": invocations * CALLS_PER_INVOCATION + LEAKS,
        "after_end": LEAKS,
        "unattributed": FOREIGN_CALLS,
    }


def trace_once(root: Path) -> tuple[float, float, float, dict[str, object]]:
    """One run as a real process: wall and CPU seconds, peak RSS in MB, its JSON answer."""
    out = root / "trace.json"
    started = time.perf_counter()
    with open(out, "wb") as stdout:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nhi_invoke",
                "audit",
                "trace",
                str(root / "ledgers"),
                "--cloudtrail",
                str(root / "trails"),
                "--json",
                "--fail-on",
                "none",
            ],
            stdout=stdout,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read() if proc.stderr else ""
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss / 1024, json.loads(out.read_text())


def check(answer: dict[str, object], expected: dict[str, int]) -> None:
    events = answer["events"]
    assert isinstance(events, list)
    attributed = [e for e in events if e["invocation_id"]]
    assert len(attributed) == expected["attributed"], len(attributed)
    assert sum(e["after_end"] for e in events) == expected["after_end"]
    assert sum(e["unattributed"] for e in events) == expected["unattributed"]
    read = answer["read"]
    assert isinstance(read, list)
    assert read[0]["events"] == expected["events"], read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--invocations", type=int, default=1_000)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--keep", help="generate into (and keep) this folder")
    parser.add_argument("--generate-into", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_into:
        target = Path(args.generate_into)
        expected = generate(target, args.invocations, args.events, args.files, seed=20)
        (target / "expected.json").write_text(json.dumps(expected))
        return
    root = Path(args.keep or tempfile.mkdtemp(prefix="nhi-trace-bench-"))
    try:
        if not (root / "trails").exists():
            # In a process of its own: it holds every record (GBs), and a trace forked from a
            # process that did would report that memory as its own peak RSS.
            began = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--generate-into",
                    str(root),
                    "--events",
                    str(args.events),
                    "--invocations",
                    str(args.invocations),
                    "--files",
                    str(args.files),
                ],
                check=True,
            )
            size = sum(p.stat().st_size for p in (root / "trails").rglob("*.gz")) / 1e6
            print(
                f"generated {args.events:,} events in {args.files} files ({size:.0f} MB "
                f"gzipped) in {time.perf_counter() - began:.0f} s"
            )
        expected = json.loads((root / "expected.json").read_text())
        runs = []
        for round_ in range(args.rounds):
            load = os.getloadavg()[0]
            elapsed, cpu, peak, answer = trace_once(root)
            check(answer, expected)
            runs.append(
                {
                    "seconds": round(elapsed, 2),
                    "cpu_seconds": round(cpu, 2),
                    "peak_rss_mb": round(peak, 1),
                    "load_average_before": round(load, 1),
                }
            )
            print(
                f"round {round_ + 1}: {elapsed:.2f} s ({cpu:.1f} s CPU), peak RSS {peak:.0f} MB, "
                f"load average {load:.1f}"
            )
        result = {
            "events": expected["events"],
            "invocations": args.invocations,
            "files": args.files,
            "runs": runs,
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "cpus": os.cpu_count(),
        }
        (HERE / "trace_results.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""How well the audits do on their corpora, and how fast `audit pipelines` is on a repository.

    python benchmarks/audit_corpus.py [--timing] [--files 300]

Accuracy: every case of tests/fixtures/pipelines is audited on its own and its findings are
compared with tests/fixtures/pipelines/expected-findings.txt (kind, severity, file, line):
recall and precision of `audit pipelines`. Every policy of tests/fixtures/trust_policies is
linted and compared with its expected findings: the share of policies whose findings are
exactly the expected ones. Each must be at least 0.95 (exit 1 otherwise); the test suite runs
this script too.

--timing: copies the pipeline corpus (and files that are not pipelines) into a temporary
repository of about --files files and times the installed `nhi-invoke audit pipelines` on it
(median of 5 runs), next to `nhi-invoke --version` for the start-up floor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nhi_invoke.audit import trust_policy  # noqa: E402
from nhi_invoke.audit.pipelines import audit  # noqa: E402

PIPELINES = ROOT / "tests" / "fixtures" / "pipelines"
POLICIES = ROOT / "tests" / "fixtures" / "trust_policies"
THRESHOLD = 0.95

Expected = tuple[str, int, str, str]  # file, line, kind, severity


def expectations(manifest: Path) -> dict[str, set[Expected]]:
    """`case: clean` or `case/file:line kind severity`, by case."""
    cases: dict[str, set[Expected]] = {}
    for raw in manifest.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where, _, rest = line.partition(" ")
        if where.endswith(":") and rest == "clean":
            cases.setdefault(where[:-1], set())
            continue
        path, _, number = where.rpartition(":")
        case, _, file = path.partition("/")
        kind, severity = rest.split()
        cases.setdefault(case, set()).add((file, int(number), kind, severity))
    return cases


def pipeline_findings(case: str) -> set[Expected]:
    report = audit(str(PIPELINES / case))
    return {(f.file, f.line, f.kind, f.severity) for f in report.findings}


def policy_findings(name: str) -> set[Expected]:
    path = POLICIES / name
    document, lines = trust_policy.load(str(path))
    return {(name, f.line, f.kind, f.severity) for f in trust_policy.lint(document, name, lines)}


@dataclass(frozen=True)
class Score:
    cases: int
    expected: int
    reported: int
    matched: int
    exact_cases: int
    misses: tuple[str, ...]

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.reported if self.reported else 1.0

    @property
    def exact_rate(self) -> float:
        return self.exact_cases / self.cases if self.cases else 1.0


def score(cases: dict[str, set[Expected]], found_in: object) -> Score:
    expected = reported = matched = exact = 0
    misses = []
    for case, wanted in sorted(cases.items()):
        found = found_in(case)  # type: ignore[operator]
        expected += len(wanted)
        reported += len(found)
        matched += len(wanted & found)
        exact += wanted == found
        misses += [f"{case}: missed {m}" for m in sorted(wanted - found)]
        misses += [f"{case}: extra {m}" for m in sorted(found - wanted)]
    return Score(len(cases), expected, reported, matched, exact, tuple(misses))


def policy_expectations() -> dict[str, set[Expected]]:
    cases: dict[str, set[Expected]] = {}
    for raw in (POLICIES / "expected-findings.txt").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where, _, rest = line.partition(" ")
        if where.endswith(":") and rest == "clean":
            cases.setdefault(where[:-1], set())
            continue
        name, _, number = where.rpartition(":")
        kind, severity = rest.split()
        cases.setdefault(name, set()).add((name, int(number), kind, severity))
    return cases


def accuracy() -> tuple[Score, Score]:
    pipelines = score(expectations(PIPELINES / "expected-findings.txt"), pipeline_findings)
    policies = score(policy_expectations(), policy_findings)
    return pipelines, policies


def _repository(target: Path, files: int) -> int:
    """A repository of about `files` files: the corpus, again and again, and non-pipelines."""
    count = copy = 0
    while count < files:
        for case in sorted(p for p in PIPELINES.iterdir() if p.is_dir()):
            destination = target / f"service-{copy}" / case.name
            shutil.copytree(case, destination)
            count += sum(1 for p in destination.rglob("*") if p.is_file())
            (destination / "README.md").write_text("# a service\n")
            (destination / "values.yaml").write_text("replicas: 2\nimage:\n  tag: latest\n")
            count += 2
            if count >= files:
                break
        copy += 1
    return count


def _median_seconds(command: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timing(files: int) -> None:
    nhi = shutil.which("nhi-invoke") or str(Path(sys.executable).parent / "nhi-invoke")
    with tempfile.TemporaryDirectory() as directory:
        repository = Path(directory)
        written = _repository(repository, files)
        command = [nhi, "audit", "pipelines", str(repository), "--json"]
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        report = json.loads(result.stdout)
        seconds = _median_seconds(command)
        floor = _median_seconds([nhi, "--version"])
    print(
        f"audit pipelines on {written} files ({len(report['files'])} pipeline files read, "
        f"{len(report['skipped'])} skipped, {len(report['findings'])} findings): "
        f"{seconds:.2f} s median of 5 (nhi-invoke --version: {floor:.2f} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing", action="store_true", help="also time a repository audit")
    parser.add_argument("--files", type=int, default=300, help="files in the timed repository")
    parser.add_argument("--verbose", action="store_true", help="list every miss and extra")
    options = parser.parse_args()
    pipelines, policies = accuracy()
    print(
        f"audit pipelines: {pipelines.cases} cases, {pipelines.expected} expected findings, "
        f"{pipelines.reported} reported, recall {pipelines.recall:.3f}, "
        f"precision {pipelines.precision:.3f}"
    )
    print(
        f"audit trust-policy: {policies.cases} policies, exact-findings rate "
        f"{policies.exact_rate:.3f} ({policies.exact_cases} of {policies.cases} exact)"
    )
    if options.verbose:
        for miss in (*pipelines.misses, *policies.misses):
            print(f"  {miss}")
    if options.timing:
        timing(options.files)
    ok = min(pipelines.recall, pipelines.precision, policies.exact_rate) >= THRESHOLD
    if not ok:
        print(f"below the {THRESHOLD} threshold", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""`nhi-invoke audit trace` end to end: real invocations against the emulators write the
ledgers; CloudTrail and Cloud Audit Logs records in the clouds' own schema describe their calls
(with the keys, sessions and principals the children really held) and a few calls that are not
theirs; the installed nhi-invoke ties each one to its invocation, or flags it."""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import trace_logs, trace_mimic
from tests.e2e.conftest import CHILD, Result, run_nhi

pytestmark = pytest.mark.e2e
GCP_CHILD = str(Path(__file__).with_name("child_gcp.py"))
HELPER_ROLE = "arn:aws:iam::123456789012:role/artifact-reader"


@dataclass(frozen=True)
class Job:
    """One real invocation: its ledger, and what the ledger and the child said."""

    invocation_id: str
    ledger: Path
    events: list[dict[str, Any]]
    report: dict[str, Any]

    def issued(self, purpose: str, cloud: str) -> dict[str, Any]:
        return next(
            e
            for e in self.events
            if e["event"] == "credential.issued" and e["purpose"] == purpose and e["cloud"] == cloud
        )

    def at(self, event: str) -> datetime:
        return datetime.fromisoformat(next(e for e in self.events if e["event"] == event)["time"])


# A child that only writes an empty report: for tokens too short-lived to be shown to anyone.
QUIET_CHILD = "-c", "import sys; open(sys.argv[1], 'w').write('{}')"


def _job(
    root: Path, name: str, sandbox: dict[str, Any], args: list[str], child: str | tuple[str, str]
) -> Job:
    job = root / name
    (job / "runner").mkdir(parents=True)
    env = {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", os.defpath),
        "HOME": str(job),
        "LANG": "C.UTF-8",
        "RUNNER_TEMP": str(job / "runner"),
    } | sandbox["environ"]
    report = job / "report.json"
    command = [sys.executable, *([child] if isinstance(child, str) else child), str(report)]
    result = run_nhi(["run", "--step-id", name, *args, "--", *command], env)
    assert result.code == 0, result.stderr
    ledger = job / "runner" / "nhi-invoke" / "ledger.jsonl"
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    return Job(events[0]["invocation_id"], ledger, events, json.loads(report.read_text()))


@dataclass(frozen=True)
class AwsScenario:
    root: Path
    a: Job
    b: Job
    expected: dict[str, tuple[str | None, str | None, bool, bool]]
    secrets: set[str]


@pytest.fixture(scope="module")
def aws(sandbox: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> AwsScenario:
    root = tmp_path_factory.mktemp("trace-aws")
    a = _job(
        root,
        "deploy-a",
        sandbox,
        [
            "--aws-oidc-role-arn",
            sandbox["entry_role_arn"],
            "--aws-role-arn",
            sandbox["target_role_arn"],
        ],
        CHILD,
    )
    b = _job(root, "deploy-b", sandbox, ["--aws-role-arn", sandbox["target_role_arn"]], CHILD)
    entry_a, child_a, child_b = (
        a.issued("entry", "aws"),
        a.issued("child", "aws"),
        b.issued("child", "aws"),
    )
    # The keys the children really held are the keys the ledgers recorded.
    assert a.report["values"]["AWS_ACCESS_KEY_ID"] == child_a["access_key_id"]
    assert b.report["values"]["AWS_ACCESS_KEY_ID"] == child_b["access_key_id"]
    target, entry = sandbox["target_role_arn"], sandbox["entry_role_arn"]
    session_a, session_b = child_a["session_name"], child_b["session_name"]
    ta, tb = a.at("invocation.started"), b.at("invocation.started")
    second = timedelta(seconds=1)
    records = {
        "a-mint": trace_logs.web_identity(
            "a-mint", ta, role_arn=entry, session=session_a, key=entry_a["access_key_id"]
        ),
        "a-hop": trace_logs.assume_role(
            "a-hop",
            ta,
            caller_key=entry_a["access_key_id"],
            caller_role_arn=entry,
            caller_session=session_a,
            role_arn=target,
            session=session_a,
            key=child_a["access_key_id"],
            source_identity=a.invocation_id,
        ),
        "a-whoami": trace_logs.call(
            "a-whoami",
            ta,
            key=child_a["access_key_id"],
            role_arn=target,
            session=session_a,
            source_identity=a.invocation_id,
        ),
        "a-put": trace_logs.call(
            "a-put",
            ta,
            key=child_a["access_key_id"],
            role_arn=target,
            session=session_a,
            source_identity=a.invocation_id,
            event_name="PutObject",
            event_source="s3.amazonaws.com",
            resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::artifacts/app.tar.gz"}],
        ),
        "a-helper": trace_logs.assume_role(
            "a-helper",
            ta,
            caller_key=child_a["access_key_id"],
            caller_role_arn=target,
            caller_session=session_a,
            role_arn=HELPER_ROLE,
            session="reader",
            key="ASIAHELPERA000000001",
            source_identity=a.invocation_id,
        ),
        "a-helper-use": trace_logs.call(
            "a-helper-use",
            ta,
            key="ASIAHELPERA000000001",
            role_arn=HELPER_ROLE,
            session="reader",
            source_identity=a.invocation_id,
            event_name="GetObject",
            event_source="s3.amazonaws.com",
        ),
        "b-mint": trace_logs.web_identity(
            "b-mint", tb, role_arn=target, session=session_b, key=child_b["access_key_id"]
        ),
        "b-whoami": trace_logs.call(
            "b-whoami", tb, key=child_b["access_key_id"], role_arn=target, session=session_b
        ),
        "b-denied": trace_logs.call(
            "b-denied",
            tb,
            key=child_b["access_key_id"],
            role_arn=target,
            session=session_b,
            event_name="DeleteBucket",
            event_source="s3.amazonaws.com",
            error_code="AccessDenied",
        ),
        "b-helper": trace_logs.assume_role(
            "b-helper",
            tb,
            caller_key=child_b["access_key_id"],
            caller_role_arn=target,
            caller_session=session_b,
            role_arn=HELPER_ROLE,
            session="reader-b",
            key="ASIAHELPERB000000001",
        ),
        "b-helper-use": trace_logs.call(
            "b-helper-use",
            tb,
            key="ASIAHELPERB000000001",
            role_arn=HELPER_ROLE,
            session="reader-b",
            event_name="GetObject",
            event_source="s3.amazonaws.com",
        ),
        "foreign-mint": trace_logs.web_identity(
            "foreign-mint",
            ta + 2 * second,
            role_arn=target,
            session="deploy-by-hand",
            key="ASIAFOREIGN000000001",
            subject="repo:nhi-sandbox/demo:ref:refs/heads/hotfix",
        ),
        "foreign-use": trace_logs.call(
            "foreign-use",
            ta + 3 * second,
            key="ASIAFOREIGN000000001",
            role_arn=target,
            session="deploy-by-hand",
            event_name="UpdateFunctionCode",
            event_source="lambda.amazonaws.com",
        ),
        "b-leak": trace_logs.call(
            "b-leak",
            b.at("command.exited") + 60 * second,
            key=child_b["access_key_id"],
            role_arn=target,
            session=session_b,
            event_name="ListBuckets",
            event_source="s3.amazonaws.com",
        ),
        "unrelated": trace_logs.call(
            "unrelated",
            ta,
            key="ASIAUNRELATED0000001",
            role_arn="arn:aws:iam::123456789012:role/someone-else",
            session="x",
        ),
    }
    # Real CloudTrail writes the new session's token in AssumeRole's response: put the child's
    # real one there, so that any output showing it fails the test.
    secrets = set(a.report["secrets"]) | set(b.report["secrets"])
    records["a-hop"]["responseElements"]["credentials"]["sessionToken"] = a.report["secrets"][1]
    ordered = list(records.values())
    trace_logs.write_delivery(root / "trails", ta, ordered[:6])
    trace_logs.write_delivery(root / "trails", tb, ordered[6:11], gz=False)
    trace_logs.write_delivery(root / "trails", tb, ordered[11:])
    trace_logs.write_digest(root / "trails", ta)
    trace_logs.write_lookup(root / "lookup-events.json", [records["a-whoami"], records["b-leak"]])
    expected = {
        "a-mint": (a.invocation_id, "minted", False, False),
        "a-hop": (a.invocation_id, "access-key", False, False),
        "a-whoami": (a.invocation_id, "access-key", False, False),
        "a-put": (a.invocation_id, "access-key", False, False),
        "a-helper": (a.invocation_id, "access-key", False, False),
        "a-helper-use": (a.invocation_id, "source-identity", False, False),
        "b-mint": (b.invocation_id, "minted", False, False),
        "b-whoami": (b.invocation_id, "access-key", False, False),
        "b-denied": (b.invocation_id, "access-key", False, False),
        "b-helper": (b.invocation_id, "access-key", False, False),
        "b-helper-use": (b.invocation_id, "assume-role", False, False),
        "foreign-mint": (None, None, False, True),
        "foreign-use": (None, None, False, True),
        "b-leak": (b.invocation_id, "access-key", True, False),
    }
    return AwsScenario(root, a, b, expected, secrets)


def trace(args: list[str], scenario: AwsScenario) -> Result:
    """Run `audit trace`; no secret of the scenario may appear in what it prints."""
    env = {"PATH": os.environ["PATH"], "HOME": str(scenario.root), "LANG": "C.UTF-8"}
    result = run_nhi(["audit", "trace", *args], env, cwd=scenario.root)
    for secret in scenario.secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
    assert "Traceback" not in result.stderr
    return result


LOGS = ["--cloudtrail", "trails", "--cloudtrail", "lookup-events.json"]


def _ledgers(scenario: AwsScenario) -> list[str]:
    # One ledger as a directory (a downloaded artifact), one as a file.
    return [str(scenario.a.ledger.parent.parent.parent), str(scenario.b.ledger)]


def test_each_call_is_tied_to_its_invocation_and_the_other_two_are_flagged(
    aws: AwsScenario,
) -> None:
    result = trace([*_ledgers(aws), *LOGS, "--json"], aws)
    assert result.code == 1, result.stderr  # a credential was used after its invocation ended
    assert result.stderr == ""
    report = json.loads(result.stdout)
    found = {
        e["event_id"]: (e["invocation_id"], e["match"], e["after_end"], e["unattributed"])
        for e in report["events"]
    }
    assert found == aws.expected
    assert len(report["events"]) == len(found)  # a call both delivered and looked up counts once
    assert all(e["ambiguous"] == [] for e in report["events"])
    assert report["warnings"] == []
    assert [r["events"] for r in report["read"]] == [15 + 2]  # 15 delivered, 2 looked up
    by_id = {i["invocation_id"]: i for i in report["invocations"]}
    b = by_id[aws.b.invocation_id]
    assert (b["step_id"], b["run_id"], b["run_attempt"], b["repository"], b["actor"]) == (
        "deploy-b",
        "1000001",
        "1",
        "nhi-sandbox/demo",
        "sandbox-user",
    )
    assert b["commit"] == "0123456789abcdef0123456789abcdef01234567"
    # Everything B did, in the order it happened.
    assert b["event_ids"] == [
        e["event_id"] for e in report["events"] if e["invocation_id"] == aws.b.invocation_id
    ]
    assert [c["purpose"] for c in by_id[aws.a.invocation_id]["credentials"]] == ["entry", "child"]


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--fail-on", "none"], 0),
        (["--fail-on", "after-end"], 1),
        (["--fail-on", "unattributed"], 1),
        (
            [
                "--fail-on",
                "after-end",
                "--principal",
                "arn:aws:iam::123456789012:role/nhi-sandbox-entry",
            ],
            0,
        ),
    ],
)
def test_fail_on_turns_the_findings_into_exit_1(
    aws: AwsScenario, extra: list[str], code: int
) -> None:
    assert trace([*_ledgers(aws), *LOGS, "--json", *extra], aws).code == code


def test_from_a_leaked_call_back_to_everything_its_invocation_did(aws: AwsScenario) -> None:
    result = trace([*_ledgers(aws), *LOGS, "--json", "--event-id", "b-leak"], aws)
    report = json.loads(result.stdout)
    assert list(report)[:2] == ["command", "version"]
    assert report["command"] == "audit trace"
    assert [i["invocation_id"] for i in report["invocations"]] == [aws.b.invocation_id]
    assert {e["event_id"] for e in report["events"]} == {
        k for k, v in aws.expected.items() if v[0] == aws.b.invocation_id
    }


def test_an_invocation_and_an_access_key_can_each_be_the_focus(aws: AwsScenario) -> None:
    only_a = json.loads(
        trace([*_ledgers(aws), *LOGS, "--json", "--invocation", aws.a.invocation_id], aws).stdout
    )
    assert {e["event_id"] for e in only_a["events"]} == {
        k for k, v in aws.expected.items() if v[0] == aws.a.invocation_id
    }
    foreign = json.loads(
        trace(
            [*_ledgers(aws), *LOGS, "--json", "--access-key-id", "ASIAFOREIGN000000001"], aws
        ).stdout
    )
    assert {e["event_id"] for e in foreign["events"]} == {"foreign-mint", "foreign-use"}
    assert foreign["invocations"] == []


def test_the_table_names_the_steps_and_flags_the_findings(aws: AwsScenario) -> None:
    result = trace([*_ledgers(aws), *LOGS], aws)
    assert result.code == 1
    out = result.stdout
    assert "1 call used a credential after its invocation ended" in out
    assert "2 calls by sessions of a managed identity that no ledger knows" in out
    assert "deploy-b · nhi-sandbox/demo#1000001/1 · commit 0123456789ab · by sandbox-user" in out
    assert "USED AFTER END" in out
    assert "by assume-role; a session the command assumed itself" in out
    assert "arn:aws:sts::123456789012:assumed-role/nhi-sandbox-deploy/deploy-by-hand" in out


@pytest.mark.parametrize("dialect", ["athena", "cloudtrail-lake"])
def test_the_printed_sql_run_on_the_same_files_gives_the_same_attribution(
    aws: AwsScenario, dialect: str
) -> None:
    table = ["--sql-table", "eds_0123"] if dialect == "cloudtrail-lake" else []
    sql = trace([*_ledgers(aws), "--print-sql", dialect, *table], aws)
    assert sql.code == 0, sql.stderr
    assert sql.stdout.startswith("-- nhi-invoke audit trace: 2 invocations, 3 AWS credentials")
    con = trace_mimic.connect()
    records = trace_mimic.cloudtrail_records([aws.root / "trails"])
    if dialect == "athena":
        trace_mimic.athena(con, records)
    else:
        trace_mimic.lake(con, records, "eds_0123")
    got = {
        r["event_id"]: (r["invocation_id"], r["matched_by"], r["after_end"], r["unattributed"])
        for r in trace_mimic.rows(con, sql.stdout)
    }
    # The one hop the printed SQL cannot follow: a role assumed by the command without a
    # SourceIdentity, into a role nhi-invoke does not manage (docs/trace.md).
    assert got == {k: v for k, v in aws.expected.items() if k != "b-helper-use"}


def test_bad_inputs_are_named_one_line_each_and_the_rest_is_traced(aws: AwsScenario) -> None:
    bad = aws.root / "bad"
    bad.mkdir(exist_ok=True)
    body = gzip.compress(json.dumps({"Records": [{"eventID": "x"}] * 2000}).encode())
    (bad / "cut.json.gz").write_bytes(body[: len(body) // 2])
    (bad / "config.json").write_text('{"not": "cloudtrail"}')
    tampered = aws.root / "tampered.jsonl"
    lines = aws.b.ledger.read_text().splitlines()
    lines[1] = lines[1].replace('"purpose":"child"', '"purpose":"entry"', 1)
    tampered.write_text("\n".join(lines) + "\n")
    result = trace([str(tampered), "--cloudtrail", "trails", "--cloudtrail", "bad"], aws)
    head = result.stdout.splitlines()[:3]
    assert head[0].startswith(
        f"warning: {tampered}: fails verification: line 3 does not follow line 2"
    )
    assert sorted(head[1:]) == sorted(
        [
            "warning: bad/config.json: is not a CloudTrail log; skipped; fix: pass files as "
            'CloudTrail delivers them to S3 ({"Records": [...]}) or the output of \'aws cloudtrail '
            "lookup-events'",
            "warning: bad/cut.json.gz: is a corrupt or truncated gzip file; skipped",
        ]
    )
    assert "1 call used a credential after its invocation ended" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--cloudtrail", "bad/config.json"], 78, "none of the 1 log file given could be used"),
        (["--cloudtrail", "nowhere"], 78, "the log nowhere does not exist"),
        ([], 2, "give the logs to trace"),
        (
            ["--cloudtrail", "trails", "--event-id", "x", "--invocation", "y"],
            2,
            "exclude each other",
        ),
        (
            ["--cloudtrail", "trails", "--since", "yesterday"],
            78,
            "--since 'yesterday' is not a time",
        ),
        (["--print-sql", "mysql"], 78, "--print-sql 'mysql' is not a dialect"),
    ],
)
def test_unusable_requests_fail_with_one_line_and_the_fix(
    aws: AwsScenario, args: list[str], code: int, message: str
) -> None:
    (aws.root / "bad").mkdir(exist_ok=True)
    (aws.root / "bad" / "config.json").write_text('{"not": "cloudtrail"}')
    result = trace([str(aws.b.ledger), *args], aws)
    assert result.code == code, result.stderr
    assert message in result.stderr
    assert "fix:" in result.stderr


SA_EVENTS = ("storage.objects.create", "storage.googleapis.com")


def _gcp_use(job: Job, insert_id: str, at: datetime) -> dict[str, Any]:
    child = job.issued("child", "gcp")
    return trace_logs.gcp_entry(
        insert_id,
        at,
        method=SA_EVENTS[0],
        service=SA_EVENTS[1],
        resource="projects/_/buckets/releases/objects/app.tar.gz",
        principal_email=child["principal"],
        delegates=(child["federated_principal"],),
    )


def _gcp_mint(job: Job, insert_id: str) -> dict[str, Any]:
    child = job.issued("child", "gcp")
    return trace_logs.gcp_entry(
        insert_id,
        datetime.fromisoformat(child["time"]),
        method="GenerateAccessToken",
        service="iamcredentials.googleapis.com",
        resource=f"projects/-/serviceAccounts/{child['principal']}",
        principal_subject=child["federated_principal"],
        reason=child["request_reason"],
    )


def test_gcp_overlapping_invocations_of_one_service_account_make_an_ambiguous_event(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    gcp = [
        "--gcp-provider",
        sandbox["gcp_provider"],
        "--gcp-service-account",
        sandbox["gcp_service_account"],
    ]
    first = _job(tmp_path, "publish-1", sandbox, gcp, GCP_CHILD)
    second = _job(tmp_path, "publish-2", sandbox, gcp, GCP_CHILD)
    during_first = datetime.fromisoformat(first.issued("child", "gcp")["time"]) + timedelta(
        milliseconds=1
    )
    during_second = datetime.fromisoformat(second.issued("child", "gcp")["time"]) + timedelta(
        milliseconds=1
    )
    entries = [
        _gcp_mint(first, "mint-1"),
        _gcp_mint(second, "mint-2"),
        _gcp_use(first, "use-1", during_first),
        _gcp_use(second, "use-both", during_second),
    ]
    (tmp_path / "gcloud.json").write_text(json.dumps(entries, indent=2))
    result = run_nhi(
        [
            "audit",
            "trace",
            str(first.ledger),
            str(second.ledger),
            "--gcp-audit",
            str(tmp_path / "gcloud.json"),
            "--json",
        ],
        {"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert result.code == 0, result.stderr
    found = {
        e["event_id"]: (e["invocation_id"], e["match"], e["ambiguous"])
        for e in json.loads(result.stdout)["events"]
    }
    assert found == {
        "mint-1": (first.invocation_id, "request-reason", []),
        "mint-2": (second.invocation_id, "request-reason", []),
        "use-1": (first.invocation_id, "gcp-window", []),
        "use-both": (None, "gcp-window", [first.invocation_id, second.invocation_id]),
    }


def test_gcp_invocations_that_do_not_overlap_are_told_apart_exactly(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    gcp = [
        "--gcp-provider",
        sandbox["gcp_provider"],
        "--gcp-service-account",
        sandbox["gcp_service_account"],
        "--gcp-lifetime",
        "1",
    ]
    first = _job(tmp_path, "short-1", sandbox, gcp, QUIET_CHILD)
    expiry = datetime.fromisoformat(first.issued("child", "gcp")["expires_at"])
    time.sleep(max(0.0, expiry.timestamp() - time.time()) + 0.05)  # until the first token is dead
    second = _job(tmp_path, "short-2", sandbox, gcp, QUIET_CHILD)
    entries = [
        _gcp_use(job, f"use-{n}", datetime.fromisoformat(job.issued("child", "gcp")["time"]))
        for n, job in ((1, first), (2, second))
    ]
    sink = tmp_path / "sink.json"
    sink.write_text("".join(json.dumps(e) + "\n" for e in entries))  # a log sink's JSON lines
    result = run_nhi(
        [
            "audit",
            "trace",
            str(first.ledger),
            str(second.ledger),
            "--gcp-audit",
            str(sink),
            "--json",
        ],
        {"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert result.code == 0, result.stderr
    found = {
        e["event_id"]: (e["invocation_id"], e["ambiguous"])
        for e in json.loads(result.stdout)["events"]
    }
    assert found == {"use-1": (first.invocation_id, []), "use-2": (second.invocation_id, [])}

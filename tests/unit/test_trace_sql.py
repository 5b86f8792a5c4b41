"""`--print-sql` runs, on DuckDB tables shaped like Athena's, CloudTrail Lake's and BigQuery's,
over the same files `audit trace` reads, and gives the same attribution."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.audit.trace.investigate import for_sql, investigate
from nhi_invoke.audit.trace.model import Focus, Invocation, TraceInput, TraceReport, Window
from nhi_invoke.audit.trace.render import event_dict
from nhi_invoke.audit.trace.sql import print_sql
from nhi_invoke.errors import ConfigError, UsageError
from nhi_invoke.ledger.records import rfc3339
from nhi_invoke.ledger.store import Ledger
from tests import trace_logs, trace_mimic

T0 = datetime(2026, 12, 3, 9, 0, 0, 250000, tzinfo=UTC)
T1 = T0 + timedelta(hours=2)
ENTRY = "arn:aws:iam::123456789012:role/ci-entry"
TARGET = "arn:aws:iam::123456789012:role/deploy"
HELPER = "arn:aws:iam::123456789012:role/helper"
SA = "deployer@proj.iam.gserviceaccount.com"
FED = "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/repo:o/r:ref:refs/heads/main"


def _aws(ledger: Path, invocation_id: str, start: datetime, *, chained: bool) -> dict[str, str]:
    log = Ledger(str(ledger), invocation_id, "deploy")
    session = f"deploy.1-1.{invocation_id}"
    log.append("invocation.started", start, ci={"provider": "github", "run_id": "1"})
    keys = {}
    hops = [("entry", ENTRY), ("child", TARGET)] if chained else [("child", TARGET)]
    for purpose, role in hops:
        keys[purpose] = f"ASIA{purpose.upper()}{invocation_id.upper():0>11}"[:20]
        log.append(
            "credential.issued",
            start,
            cloud="aws",
            purpose=purpose,
            principal=trace_logs.assumed_role_arn(role, session),
            session_name=session,
            access_key_id=keys[purpose],
            fingerprint=f"sha256:{purpose}{invocation_id}",
            expires_at=rfc3339(start + timedelta(seconds=900)),
            role_arn=role,
            source_identity=invocation_id if chained and purpose == "child" else None,
        )
    log.append("command.exited", start + timedelta(seconds=30), exit_code=0)
    log.append("invocation.finished", start + timedelta(seconds=31), exit_code=0)
    return keys | {"session": session}


def _gcp(ledger: Path, invocation_id: str, start: datetime, lifetime: int) -> None:
    log = Ledger(str(ledger), invocation_id, "publish")
    log.append("invocation.started", start, ci={"provider": "github"})
    reason = f"nhi-invoke invocation {invocation_id}"
    for purpose, kind, principal, seconds in (
        ("entry", "federated", FED, 300),
        ("child", "service_account", SA, lifetime),
    ):
        log.append(
            "credential.issued",
            start,
            cloud="gcp",
            purpose=purpose,
            kind=kind,
            principal=principal,
            federated_principal=FED,
            request_reason=reason,
            fingerprint=f"sha256:{purpose}{invocation_id}",
            expires_at=rfc3339(start + timedelta(seconds=seconds)),
        )
    log.append("command.exited", start + timedelta(seconds=100), exit_code=0)
    log.append("invocation.finished", start + timedelta(seconds=101), exit_code=0)


def _scenario(tmp_path: Path) -> tuple[Path, Path, Path]:
    ledger = tmp_path / "ledger.jsonl"
    a = _aws(ledger, "inva", T0, chained=True)
    b = _aws(ledger, "invb", T0 + timedelta(seconds=60), chained=False)
    s = timedelta(seconds=1)

    def call(eid: str, at: float, key: str, role: str, session: str, si: str | None = None) -> Any:
        return trace_logs.call(
            eid, T0 + at * s, key=key, role_arn=role, session=session, source_identity=si
        )

    records = [
        trace_logs.web_identity("a-mint", T0, role_arn=ENTRY, session=a["session"], key=a["entry"]),
        trace_logs.assume_role(
            "a-hop",
            T0,
            caller_key=a["entry"],
            caller_role_arn=ENTRY,
            caller_session=a["session"],
            role_arn=TARGET,
            session=a["session"],
            key=a["child"],
            source_identity="inva",
        ),
        call("a-use", 5, a["child"], TARGET, a["session"], "inva"),
        trace_logs.assume_role(
            "a-helper",
            T0 + 6 * s,
            caller_key=a["child"],
            caller_role_arn=TARGET,
            caller_session=a["session"],
            role_arn=HELPER,
            session="h",
            key="ASIADERIVEDA00000001",
            source_identity="inva",
        ),
        call("a-helper-use", 7, "ASIADERIVEDA00000001", HELPER, "h", "inva"),
        call("a-no-key", 8, "", TARGET, a["session"]),
        trace_logs.web_identity(
            "b-mint", T0 + 60 * s, role_arn=TARGET, session=b["session"], key=b["child"]
        ),
        call("b-use", 61, b["child"], TARGET, b["session"]),
        trace_logs.assume_role(
            "b-helper",
            T0 + 62 * s,
            caller_key=b["child"],
            caller_role_arn=TARGET,
            caller_session=b["session"],
            role_arn=HELPER,
            session="h2",
            key="ASIADERIVEDB00000001",
        ),
        call("b-helper-use", 63, "ASIADERIVEDB00000001", HELPER, "h2"),
        call("b-exit-second", 90, b["child"], TARGET, b["session"]),
        call("b-leak", 95, b["child"], TARGET, b["session"]),
        trace_logs.web_identity(
            "foreign-mint",
            T0 + 100 * s,
            role_arn=TARGET,
            session="by-hand",
            key="ASIAFOREIGN000000001",
        ),
        call("foreign-use", 101, "ASIAFOREIGN000000001", TARGET, "by-hand"),
        call("unrelated", 102, "ASIAUNRELATED0000001", "arn:aws:iam::123456789012:role/x", "y"),
    ]
    trails = tmp_path / "trails"
    trace_logs.write_delivery(trails, T0, records[:8])
    trace_logs.write_delivery(trails, T0 + 60 * s, records[8:])

    _gcp(ledger, "g1", T1, 600)
    _gcp(ledger, "g2", T1 + timedelta(seconds=60), 600)
    _gcp(ledger, "g3", T1 + timedelta(seconds=700), 1)

    def use(iid: str, at: float, delegates: tuple[str, ...] = (FED,), email: str = SA) -> Any:
        return trace_logs.gcp_entry(
            iid,
            T1 + timedelta(seconds=at),
            method="storage.objects.get",
            service="storage.googleapis.com",
            resource="projects/_/buckets/b",
            principal_email=email,
            delegates=delegates,
        )

    entries = [
        trace_logs.gcp_entry(
            "g2-mint",
            T1 + timedelta(seconds=60),
            method="GenerateAccessToken",
            service="iamcredentials.googleapis.com",
            resource="projects/-/serviceAccounts/1",
            principal_subject=FED,
            reason="nhi-invoke invocation g2",
        ),
        use("g1-only", 10),
        use("g1-or-g2", 70),
        use("g3-only", 700.5),
        use("no-delegation", 20, delegates=()),
        use("other-sa", 30, email="other@proj.iam.gserviceaccount.com"),
        use("g2-after-end", 650),
    ]
    entries[1]["logName"] = entries[1]["logName"].replace("data_access", "activity")
    audit = tmp_path / "gcp.json"
    audit.write_text(json.dumps(entries))
    return ledger, trails, audit


@pytest.fixture
def scenario(tmp_path: Path) -> tuple[TraceReport, list[Invocation], Path, Path]:
    ledger, trails, audit = _scenario(tmp_path)
    request = TraceInput(
        ledgers=(str(ledger),), logs=(("cloudtrail", str(trails)), ("gcp", str(audit)))
    )
    report = investigate(request, None)
    assert report.problems == ()
    return report, list(report.invocations), trails, audit


def _python(report: TraceReport, source: str) -> dict[str, dict[str, Any]]:
    return {t.event.event_id: event_dict(t) for t in report.events if t.event.source == source}


def test_the_local_trace_attributes_the_scenario_exactly(scenario: Any) -> None:
    report, _, _, _ = scenario
    found = {
        e["event_id"]: (
            e["invocation_id"],
            e["match"],
            e["after_end"],
            e["unattributed"],
            tuple(e["ambiguous"]),
        )
        for e in map(event_dict, report.events)
    }
    assert found == {
        "a-mint": ("inva", "minted", False, False, ()),
        "a-hop": ("inva", "access-key", False, False, ()),
        "a-use": ("inva", "access-key", False, False, ()),
        "a-helper": ("inva", "access-key", False, False, ()),
        "a-helper-use": ("inva", "source-identity", False, False, ()),
        "a-no-key": ("inva", "session-name", False, False, ()),
        "b-mint": ("invb", "minted", False, False, ()),
        "b-use": ("invb", "access-key", False, False, ()),
        "b-helper": ("invb", "access-key", False, False, ()),
        "b-helper-use": ("invb", "assume-role", False, False, ()),
        "b-exit-second": ("invb", "access-key", False, False, ()),
        "b-leak": ("invb", "access-key", True, False, ()),
        "foreign-mint": (None, None, False, True, ()),
        "foreign-use": (None, None, False, True, ()),
        "g2-mint": ("g2", "request-reason", False, False, ()),
        "g1-only": ("g1", "gcp-window", False, False, ()),
        "g1-or-g2": (None, "gcp-window", False, False, ("g1", "g2")),
        "g3-only": ("g3", "gcp-window", False, False, ()),
        "no-delegation": (None, None, False, True, ()),
        "g2-after-end": ("g2", "gcp-window", True, False, ()),
    }


@pytest.mark.parametrize("dialect", ["athena", "cloudtrail-lake"])
def test_the_printed_aws_sql_gives_the_same_attribution(scenario: Any, dialect: str) -> None:
    report, invocations, trails, _ = scenario
    con = trace_mimic.connect()
    records = trace_mimic.cloudtrail_records([trails])
    if dialect == "athena":
        trace_mimic.athena(con, records)
        sql = print_sql(dialect, invocations, Window(), ())
    else:
        trace_mimic.lake(con, records, "eds_0123")
        sql = print_sql(dialect, invocations, Window(), ("eds_0123",))
    got = {
        r["event_id"]: (r["invocation_id"], r["matched_by"], r["after_end"], r["unattributed"])
        for r in trace_mimic.rows(con, sql)
    }
    expected = {
        event_id: (e["invocation_id"], e["match"], e["after_end"], e["unattributed"])
        for event_id, e in _python(report, "cloudtrail").items()
        if e["match"] != "assume-role"
    }
    # A session the command assumed itself, of a role nhi-invoke does not manage and without a
    # SourceIdentity, is followed by the local trace only (docs/trace.md says so).
    assert set(_python(report, "cloudtrail")) - set(expected) == {"b-helper-use"}
    assert got == expected


def test_the_printed_bigquery_sql_gives_the_same_attribution(scenario: Any) -> None:
    report, invocations, _, audit = scenario
    con = trace_mimic.connect()
    trace_mimic.bigquery(con, json.loads(audit.read_text()))
    rows = trace_mimic.rows(con, print_sql("bigquery", invocations, Window(), ()))
    by_event: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_event.setdefault(row["event_id"], []).append(row)
    python = _python(report, "gcp")
    assert set(by_event) == set(python)
    for event_id, event in python.items():
        candidates = by_event[event_id]
        if event["ambiguous"]:
            assert sorted(r["invocation_id"] for r in candidates) == event["ambiguous"]
            assert all(r["candidates"] == len(event["ambiguous"]) for r in candidates)
            assert all(r["after_end"] for r in candidates) == event["after_end"]
        else:
            (row,) = candidates
            assert (row["invocation_id"], row["matched_by"], row["after_end"]) == (
                event["invocation_id"],
                event["match"],
                event["after_end"],
            ), event_id
            assert row["unattributed"] == event["unattributed"]


def test_the_sql_covers_only_the_window_asked(scenario: Any) -> None:
    _, invocations, trails, _ = scenario
    con = trace_mimic.connect()
    trace_mimic.athena(con, trace_mimic.cloudtrail_records([trails]))
    window = Window(since=T0 + timedelta(seconds=60), until=T0 + timedelta(seconds=92))
    got = {
        r["event_id"] for r in trace_mimic.rows(con, print_sql("athena", invocations, window, ()))
    }
    assert got == {"b-mint", "b-use", "b-helper", "b-exit-second"}


def test_the_sql_covers_only_the_invocations_the_focus_selects(tmp_path: Path) -> None:
    ledger, _, _ = _scenario(tmp_path)
    request = TraceInput(ledgers=(str(ledger),), logs=(), focus=Focus(invocation_id="invb"))
    chosen, _ = for_sql(request, None)
    sql = print_sql("athena", chosen, Window(), ())
    assert "'invb'" in sql
    assert "inva" not in sql
    assert sql.startswith("-- nhi-invoke audit trace: 1 invocation, 1 AWS credential")


def test_cloudtrail_lake_needs_its_event_data_store(scenario: Any) -> None:
    _, invocations, _, _ = scenario
    with pytest.raises(UsageError, match="needs the event data store"):
        print_sql("cloudtrail-lake", invocations, Window(), ())


def test_table_names_are_checked_and_quoted_for_the_engine(scenario: Any) -> None:
    _, invocations, _, _ = scenario
    with pytest.raises(ConfigError, match="is not a table name"):
        print_sql("athena", invocations, Window(), ("logs; DROP TABLE x",))
    sql = print_sql(
        "bigquery", invocations, Window(), ("my-project.audit.cloudaudit_googleapis_com_activity",)
    )
    assert "FROM `my-project.audit.cloudaudit_googleapis_com_activity`" in sql
    assert "Lake is closed to new customers since 2026-05-31" in print_sql(
        "cloudtrail-lake", invocations, Window(), ("eds-1234",)
    )

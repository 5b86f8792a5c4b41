"""`audit trace`'s readers on real files through DuckDB: every format users have, and the bad
ones, each named in one line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nhi_invoke.audit.trace import files, sources
from nhi_invoke.audit.trace.duck import Engine
from nhi_invoke.audit.trace.model import AwsIdentity, GcpIdentity, VaultIdentity
from nhi_invoke.audit.trace.sources import Needles, SourceRead
from tests import trace_logs

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/deploy"
KEY = "ASIAKEY0000000000001"
NEEDLES = Needles(aws_keys=(KEY,), aws_roles=(ROLE,))


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine()
    yield engine
    engine.close()


def read(engine: Engine, source: str, paths: list[Path], needles: Needles = NEEDLES) -> SourceRead:
    reader = sources.reader(source)
    logs, problems = files.open_logs(files.discover([str(p) for p in paths], reader.suffixes))
    result = reader.read(engine, logs, needles)
    return SourceRead(result.events, tuple(problems) + result.problems, result.stats)


def calls(count: int, key: str = KEY, start: int = 0) -> list[dict[str, object]]:
    return [
        trace_logs.call(
            f"ev-{start + n:06d}", T0 + timedelta(seconds=n), key=key, role_arn=ROLE, session="s"
        )
        for n in range(count)
    ]


def test_a_delivered_tree_is_read_gzipped_or_not_and_digests_are_skipped(
    engine: Engine, tmp_path: Path
) -> None:
    trace_logs.write_delivery(tmp_path, T0, calls(3))
    trace_logs.write_delivery(tmp_path, T0, calls(2, start=10), gz=False)
    trace_logs.write_delivery(tmp_path, T0, calls(4, key="ASIAOTHER00000000001", start=20))
    trace_logs.write_digest(tmp_path, T0)
    result = read(engine, "cloudtrail", [tmp_path / "AWSLogs"])
    assert result.problems == ()
    assert (result.stats.files, result.stats.events) == (3, 9)
    # The other key's session is of the same (managed) role: returned for attribution too.
    assert len(result.events) == 9
    event = next(e for e in result.events if e.event_id == "ev-000001")
    assert event.event_time == T0 + timedelta(seconds=1)
    assert event.principal == "arn:aws:sts::123456789012:assumed-role/deploy/s"
    assert isinstance(event.identity, AwsIdentity)
    assert (event.identity.access_key_id, event.identity.issuer_arn) == (KEY, ROLE)


def test_a_cloudtrail_file_reformatted_by_hand_is_read_too(engine: Engine, tmp_path: Path) -> None:
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps({"Records": calls(3)}, indent=2))
    with gzip.open(tmp_path / "pretty.json.gz", "wt") as handle:
        json.dump({"Records": calls(2, start=5)}, handle, indent=4)
    result = read(engine, "cloudtrail", [tmp_path])
    assert result.problems == ()
    assert result.stats.events == 5


def test_only_events_the_ledgers_make_relevant_come_back(engine: Engine, tmp_path: Path) -> None:
    trace_logs.write_delivery(
        tmp_path, T0, calls(3) + calls(5, key="ASIAOTHER00000000001", start=9)
    )
    result = read(engine, "cloudtrail", [tmp_path], Needles(aws_keys=(KEY,)))
    assert sorted(e.event_id for e in result.events) == ["ev-000000", "ev-000001", "ev-000002"]
    assert result.stats.events == 8


def test_lookup_events_output_is_read_from_its_json_strings(engine: Engine, tmp_path: Path) -> None:
    minted = trace_logs.web_identity("mint", T0, role_arn=ROLE, session="s", key=KEY)
    path = trace_logs.write_lookup(tmp_path / "lookup.json", [*calls(2), minted])
    result = read(engine, "cloudtrail", [path])
    assert result.problems == ()
    by_id = {e.event_id: e for e in result.events}
    assert set(by_id) == {"ev-000000", "ev-000001", "mint"}
    identity = by_id["mint"].identity
    assert isinstance(identity, AwsIdentity)
    assert (identity.minted_key, identity.requested_role_arn) == (KEY, ROLE)
    assert identity.access_key_id is None


def test_a_cloudtrail_file_larger_than_duckdbs_default_object_limit_is_read(
    engine: Engine, tmp_path: Path
) -> None:
    records = calls(18_000)
    path = trace_logs.write_delivery(tmp_path, T0, records)
    assert len(gzip.decompress(path.read_bytes())) > 16 * 1024 * 1024
    result = read(engine, "cloudtrail", [path])
    assert result.problems == ()
    assert (result.stats.events, len(result.events)) == (18_000, 18_000)


def test_bad_cloudtrail_inputs_are_each_named_in_one_line(engine: Engine, tmp_path: Path) -> None:
    good = trace_logs.write_delivery(tmp_path / "good", T0, calls(2))
    body = gzip.compress(json.dumps({"Records": calls(400)}).encode())
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(body[: len(body) // 2])
    not_gzip = tmp_path / "fake.json.gz"
    not_gzip.write_bytes(b"\x1f\x8b\x08\x00garbage that is no deflate stream")
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}')
    not_records = tmp_path / "not-records.json"
    not_records.write_text('{"Records": [{"a": 1}, {"b": 2}]}')
    empty = tmp_path / "empty.json"
    empty.write_text('{"Records": []}')
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)))
    paths = [good, truncated, not_gzip, other, not_records, empty, binary]
    result = read(engine, "cloudtrail", paths)
    lines = sorted(p.one_line() for p in result.problems)
    assert lines == sorted(
        [
            f"{truncated}: is a corrupt or truncated gzip file; skipped",
            f"{not_gzip}: is not a readable gzip file; skipped",
            f"{other}: is not a CloudTrail log; skipped; fix: pass files as CloudTrail delivers "
            "them to S3 ({\"Records\": [...]}) or the output of 'aws cloudtrail lookup-events'",
            f"{not_records}: holds no CloudTrail records; skipped",
            f"{binary}: is not a CloudTrail log; skipped; fix: pass files as CloudTrail delivers "
            "them to S3 ({\"Records\": [...]}) or the output of 'aws cloudtrail lookup-events'",
        ]
    )
    assert sorted(e.event_id for e in result.events) == ["ev-000000", "ev-000001"]
    assert result.stats.events == 2


SA = "deployer@proj.iam.gserviceaccount.com"
FEDERATED = (
    "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/s"
)


def gcp_entries() -> list[dict[str, object]]:
    return [
        trace_logs.gcp_entry(
            "use-1",
            T0,
            method="storage.objects.get",
            service="storage.googleapis.com",
            resource="projects/_/buckets/b/objects/o",
            principal_email=SA,
            delegates=(FEDERATED,),
        ),
        trace_logs.gcp_entry(
            "mint-1",
            T0,
            method="GenerateAccessToken",
            service="iamcredentials.googleapis.com",
            resource="projects/-/serviceAccounts/1",
            principal_subject=FEDERATED,
            reason="nhi-invoke invocation abc",
            status_code=7,
        ),
        trace_logs.gcp_entry(
            "other", T0, method="x", service="y", resource="z", principal_email="someone@x.com"
        ),
    ]


def test_gcp_entries_are_read_from_gcloud_json_and_sink_lines(
    engine: Engine, tmp_path: Path
) -> None:
    entries = gcp_entries()
    array = tmp_path / "gcloud.json"
    array.write_text(json.dumps(entries, indent=2))
    sink = tmp_path / "sink" / "cloudaudit.googleapis.com" / "data_access" / "00.json"
    sink.parent.mkdir(parents=True)
    sink.write_text("".join(json.dumps(e) + "\n" for e in entries))
    needles = Needles(gcp_principals=(SA, FEDERATED), gcp_reasons=("nhi-invoke invocation abc",))
    for path in (array, tmp_path / "sink"):
        result = read(engine, "gcp", [path], needles)
        assert result.problems == ()
        by_id = {e.event_id: e for e in result.events}
        assert set(by_id) == {"use-1", "mint-1"}
        use = by_id["use-1"].identity
        assert isinstance(use, GcpIdentity)
        assert (use.principal_email, use.delegation_subjects) == (SA, (FEDERATED,))
        assert by_id["mint-1"].error_code == "PERMISSION_DENIED"
        assert result.stats.events == 3


def test_json_that_is_not_a_gcp_audit_log_is_named(engine: Engine, tmp_path: Path) -> None:
    vault_like = tmp_path / "audit.json"
    vault_like.write_text('{"time": "2026-12-03T09:00:00Z", "type": "request"}\n')
    result = read(engine, "gcp", [vault_like])
    assert [p.one_line() for p in result.problems] == [
        f"{vault_like}: is not a GCP audit log; skipped; fix: pass the output of 'gcloud "
        "logging read --format=json' or a log sink's JSON lines"
    ]


def vault_line(request_id: str, kind: str, accessor: str) -> str:
    entry = {
        "time": "2026-12-03T09:00:01.123456789Z",
        "type": kind,
        "auth": {"accessor": accessor, "display_name": "token", "policies": ["default"]},
        "request": {"id": request_id, "operation": "read", "path": "secret/data/app"},
    }
    if kind == "response":
        entry["error"] = "1 error occurred:\n\t* permission denied\n\n"
    return json.dumps(entry) + "\n"


def test_a_vault_log_cut_mid_line_is_read_up_to_the_cut(engine: Engine, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(
        vault_line("r1", "request", "ACC1")
        + vault_line("r1", "response", "ACC1")
        + vault_line("r2", "request", "ACC1")[:40]
    )
    result = read(engine, "vault", [log], Needles(vault_accessors=("ACC1",)))
    assert [p.one_line() for p in result.problems] == [
        f"{log}: has lines that are not JSON (cut short while being written?); "
        "the readable lines were used"
    ]
    (event,) = result.events
    assert (event.event_id, event.error_code) == ("r1", "permission denied")
    assert isinstance(event.identity, VaultIdentity)
    assert event.event_time == datetime(2026, 12, 3, 9, 0, 1, 123456, tzinfo=UTC)


def test_a_file_that_is_not_a_vault_audit_log_is_named(engine: Engine, tmp_path: Path) -> None:
    array = tmp_path / "gcloud.json"
    array.write_text("[]")
    lines = tmp_path / "other.log"
    lines.write_text('{"level": "info", "msg": "started"}\n')
    result = read(engine, "vault", [array, lines])
    assert sorted(p.path for p in result.problems) == sorted([str(array), str(lines)])
    assert all("is not a Vault/OpenBao audit log" in p.message for p in result.problems)

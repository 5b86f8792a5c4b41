"""`audit trace --azure-signins`: Entra ID sign-ins read from Graph pages and Azure Monitor
exports through DuckDB, and tied to invocations by token id and client-request-id."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nhi_invoke.audit.trace import files, sources
from nhi_invoke.audit.trace.attribution import attribute
from nhi_invoke.audit.trace.duck import Engine
from nhi_invoke.audit.trace.model import (
    AzureIdentity,
    CiRun,
    Credential,
    Invocation,
    LogEvent,
)
from nhi_invoke.audit.trace.sources import Needles, SourceRead
from tests import entra_signins

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
APP = "9a1b2c3d-0000-4000-8000-00000000a001"
SP = "5e6f7a8b-0000-4000-8000-00000000b001"
CORRELATION = "2b4a8f3e-6c1d-5e7f-9a0b-1c2d3e4f5a6b"
OTHER_CORRELATION = "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"
NEEDLES = Needles(azure_correlations=(CORRELATION,), azure_token_ids=("uti-1",), azure_apps=(APP,))


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine()
    yield engine
    engine.close()


def read(engine: Engine, paths: list[Path], needles: Needles = NEEDLES) -> SourceRead:
    reader = sources.reader("azure")
    logs, problems = files.open_logs(files.discover([str(p) for p in paths], reader.suffixes))
    result = reader.read(engine, logs, needles)
    return SourceRead(result.events, tuple(problems) + result.problems, result.stats)


def ours(n: int, **extra: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "app_id": APP,
        "service_principal_id": SP,
        "correlation_id": CORRELATION,
        "token_id": f"uti-{n}",
        "sign_in_id": f"si-{n}",
    }
    return entra_signins.sign_in(T0 + timedelta(seconds=n), **(fields | extra))  # type: ignore[arg-type]


def test_graph_pages_and_a_monitor_export_are_read_and_the_same_sign_in_counts_once(
    engine: Engine, tmp_path: Path
) -> None:
    foreign = ours(3, correlation_id=OTHER_CORRELATION, token_id="uti-x")
    unrelated = ours(4, app_id="ffffffff-0000-4000-8000-000000000000", service_principal_id="x")
    unrelated["correlationId"] = OTHER_CORRELATION
    entra_signins.write_graph_pages(tmp_path / "page1.json", [ours(1), ours(2)], [unrelated])
    entra_signins.write_monitor_export(tmp_path / "PT1H.json.gz", [ours(1), foreign])
    result = read(engine, [tmp_path])
    assert result.problems == ()
    assert (result.stats.files, result.stats.events) == (2, 5)  # scanned: 3 + 2
    by_id = {e.event_id: e for e in result.events}
    assert sorted(by_id) == ["si-1", "si-2", "si-3"]  # the unrelated app is not kept
    event = by_id["si-3"]
    assert event.source == "azure"
    assert event.event_time == T0 + timedelta(seconds=3)  # properties.createdDateTime
    assert (event.principal, event.resource) == (APP, "Windows Azure Service Management API")
    assert event.event_name == "service principal sign-in"
    assert isinstance(event.identity, AzureIdentity)
    assert (event.identity.correlation_id, event.identity.token_id) == (OTHER_CORRELATION, "uti-x")


def test_a_managed_identity_export_an_event_hub_batch_and_a_failure_code(
    engine: Engine, tmp_path: Path
) -> None:
    failed = ours(5, error_code=700213, token_id=None)
    entra_signins.write_monitor_export(
        tmp_path / "mi.json", [failed], gz=False, category="ManagedIdentitySignInLogs"
    )
    hub = {"records": [entra_signins.monitor_record(ours(6))]}
    (tmp_path / "hub.json").write_text(json.dumps(hub))
    result = read(engine, [tmp_path / "mi.json", tmp_path / "hub.json"])
    assert result.problems == ()
    by_id = {e.event_id: e for e in result.events}
    assert by_id["si-5"].error_code == "AADSTS700213"
    assert by_id["si-5"].event_name == "managed identity sign-in"
    assert by_id["si-6"].error_code is None


def test_ids_compare_without_case(engine: Engine, tmp_path: Path) -> None:
    upper = ours(1, correlation_id=CORRELATION.upper(), token_id="elsewhere", app_id=APP.upper())
    entra_signins.write_graph_pages(tmp_path / "page.json", [upper])
    (event,) = read(engine, [tmp_path]).events
    assert event.event_id == "si-1"


def test_files_that_are_not_sign_in_logs_are_named_never_a_silent_zero(
    engine: Engine, tmp_path: Path
) -> None:
    audit = {"time": "2026-12-03T09:00:00Z", "category": "AuditLogs", "properties": {"id": "a"}}
    (tmp_path / "audit.json").write_text(json.dumps(audit) + "\n")
    (tmp_path / "trail.json").write_text(json.dumps({"Records": []}) + "x")
    (tmp_path / "text.json").write_text("not json at all\n")
    with gzip.open(tmp_path / "cut.json.gz", "wb") as handle:
        handle.write(json.dumps({"value": [ours(1)] * 50}).encode())
    cut = (tmp_path / "cut.json.gz").read_bytes()
    (tmp_path / "cut.json.gz").write_bytes(cut[: len(cut) // 2])
    entra_signins.write_graph_pages(tmp_path / "empty.json", [])
    result = read(engine, [tmp_path])
    named = {Path(p.path).name: p.message for p in result.problems}
    assert set(named) == {"audit.json", "trail.json", "text.json", "cut.json.gz"}, named
    assert "not an Entra ID sign-in log" in named["audit.json"]
    assert "gzip" in named["cut.json.gz"]
    assert result.stats.files == 1  # the empty page is a usable, empty log


# -- attribution -----------------------------------------------------------------------------


def invocation(invocation_id: str, correlation: str, token_ids: tuple[str, ...]) -> Invocation:
    credentials = tuple(
        Credential(
            cloud="azure",
            purpose="child",
            principal=APP,
            principal_id=SP,
            issued_at=T0,
            expires_at=T0 + timedelta(hours=1),
            fingerprint=f"sha256:{token_id}",
            token_id=token_id,
            client_request_id=correlation,
        )
        for token_id in token_ids
    )
    return Invocation(
        invocation_id=invocation_id,
        step_id="deploy",
        ledger="ledger.jsonl",
        started_at=T0,
        command_ended_at=T0 + timedelta(seconds=30.4),
        finished_at=T0 + timedelta(seconds=31),
        exit_code=0,
        ci=CiRun(provider="github", run_id="1"),
        credentials=credentials,
    )


def event(
    event_id: str,
    seconds: float,
    *,
    correlation: str | None = CORRELATION,
    token_id: str | None = None,
    app: str | None = APP,
) -> LogEvent:
    identity = AzureIdentity(
        app_id=app, service_principal_id=None, correlation_id=correlation, token_id=token_id
    )
    return LogEvent(
        source="azure",
        event_id=event_id,
        event_time=T0 + timedelta(seconds=seconds),
        event_name="service principal sign-in",
        service="Entra ID",
        resource="Windows Azure Service Management API",
        error_code=None,
        principal=app,
        identity=identity,
        whole_seconds=True,
    )


INVOCATIONS = [
    invocation("inv-a", CORRELATION, ("uti-1", "uti-2")),
    invocation("inv-b", OTHER_CORRELATION, ("uti-3",)),
]


def test_a_sign_in_is_its_invocations_by_token_id_and_by_client_request_id() -> None:
    traced = attribute(
        [
            event("by-token", 1, correlation=None, token_id="uti-3"),
            event("by-correlation", 2, token_id="not-recorded"),
            event("token-wins", 3, correlation=CORRELATION, token_id="uti-3"),
        ],
        INVOCATIONS,
        {},
    )
    got = {t.event.event_id: (t.invocation_id, t.match, t.after_end) for t in traced}
    assert got == {
        "by-token": ("inv-b", "token-id", False),
        "by-correlation": ("inv-a", "client-request-id", False),
        "token-wins": ("inv-b", "token-id", False),
    }


def test_a_sign_in_of_the_app_without_an_invocations_correlation_id_is_unattributed() -> None:
    (traced,) = attribute(
        [
            event("foreign", 5, correlation="11111111-2222-3333-4444-555555555555"),
            event("unmanaged", 5, correlation=None, app="someone-else"),
        ],
        INVOCATIONS,
        {},
    )
    assert traced.event.event_id == "foreign"
    assert (traced.invocation_id, traced.unattributed) == (None, True)
    assert traced.note == "a sign-in of the app without an invocation's client-request-id"


def test_a_sign_in_with_the_invocations_correlation_id_after_its_command_ended_is_flagged() -> None:
    during, edge, late = attribute(
        [event("during", 29), event("edge", 30), event("late", 31)], INVOCATIONS, {}
    )
    assert (during.after_end, during.invocation_id) == (False, "inv-a")
    # Graph records whole seconds: the second the command ended in is not "after".
    assert (edge.after_end, late.after_end) == (False, True)
    assert late.invocation_id == "inv-a"

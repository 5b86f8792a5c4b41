"""The invocation flow with a fake broker and a fake CI provider, both implementing the
interfaces (no patching): the broker is registered through NHI_BROKER_MODULES and talks to a
real secrets service on 127.0.0.1; the CI hands out tokens and records what it was asked to
mask and summarise."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.ci.interface import CIContext
from nhi_invoke.errors import ConfigError, RecordError, RefusedError
from nhi_invoke.invocation.flow import Invocation
from nhi_invoke.invocation.prepare import Prepared, RunRequest, prepare
from nhi_invoke.invocation.recovery import RecoveryRequest, recover
from nhi_invoke.retry import RetryPolicy
from tests.fake_broker.service import SecretsService
from tests.tokens import unsigned_token

FAST = RetryPolicy(attempts=2, base_seconds=0.01, cap_seconds=0.02, total_seconds=5)
MODULE = "tests.fake_broker.declaration"


class FakeReporting:
    """What the CI was asked to show: masked values, summaries, outputs."""

    def __init__(self) -> None:
        self.masked: list[str] = []
        self.summaries: list[str] = []
        self.outputs: dict[str, str] = {}

    def mask(self, value: str, *, own_line: bool = False) -> None:
        self.masked.append(value)

    def write_summary(self, markdown: str) -> None:
        self.summaries.append(markdown)

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        self.outputs.update(outputs)


class FakeCI:
    """A CI that is present when FAKE_CI=1 and signs nothing: its tokens are unsigned JWTs for
    whatever audience is asked (the flow's pre-flight checks still apply)."""

    name = "fakeci"

    def __init__(self) -> None:
        self.reports = FakeReporting()
        self.audiences: list[str] = []

    def context(self, environ: Mapping[str, str]) -> CIContext | None:
        if environ.get("FAKE_CI") != "1":
            return None
        return CIContext(provider=self.name, run_id="7", run_attempt="1", step="deploy")

    def fetch_token(self, environ: Mapping[str, str], audience: str, policy: RetryPolicy) -> str:
        self.audiences.append(audience)
        return unsigned_token(now=time.time(), aud=audience, sub="repo:o/r:ref:main")

    def reporting(self, environ: Mapping[str, str]) -> FakeReporting:
        return self.reports


@pytest.fixture
def service() -> Iterator[SecretsService]:
    with SecretsService() as running:
        yield running


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "FAKE_CI": "1",
        "NHI_BROKER_MODULES": MODULE,
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    } | extra


def _prepare(tmp_path: Path, ci: FakeCI, given: dict[str, Any], **extra: str) -> Prepared:
    request = RunRequest({"ledger": str(tmp_path / "ledger.jsonl")} | given, ("true",))
    return prepare(request, _environ(tmp_path, **extra), str(tmp_path), policy=FAST, providers=[ci])


def _events(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_open_issues_records_and_hands_the_grant_to_the_child(
    tmp_path: Path, service: SecretsService
) -> None:
    ci = FakeCI()
    invocation = Invocation(_prepare(tmp_path, ci, {"fake_url": service.url}), quiet=True)
    invocation.begin("true")
    env = invocation.open()
    token = env["FAKE_SECRET_TOKEN"]
    assert [s["live"] for s in service.state().values()] == [True]
    assert env["FAKE_SECRETS_URL"] == service.url
    assert env["NHI_STEP_ID"] == "deploy"  # from the fake CI's context
    assert ci.audiences == ["fake-secrets"]
    # Masked before it was recorded, with the OIDC token it came from.
    assert token in ci.reports.masked
    assert len(ci.reports.masked) == 2
    issued = [e for e in _events(tmp_path) if e["event"] == "credential.issued"]
    assert [e["cloud"] for e in issued] == ["fake"]
    assert issued[0]["oidc"]["claims"]["sub"] == "repo:o/r:ref:main"
    assert token not in (tmp_path / "ledger.jsonl").read_text()
    invocation.close(0)


def test_close_releases_every_grant_once_even_when_called_twice(
    tmp_path: Path, service: SecretsService
) -> None:
    ci = FakeCI()
    invocation = Invocation(_prepare(tmp_path, ci, {"fake_url": service.url}), quiet=True)
    invocation.begin("true")
    invocation.open()
    first = invocation.close(0)
    again = invocation.close(0)
    assert again == first
    assert [release.method for _, release in first] == ["revoke-accessor"]
    assert [s["live"] for s in service.state().values()] == [False]
    names = [e["event"] for e in _events(tmp_path)]
    assert names == [
        "invocation.started",
        "credential.issued",
        "credential.revoked",
        "invocation.finished",
    ]
    assert len(ci.reports.summaries) == 1  # the job summary, through the CI, once
    assert "fake child" in ci.reports.summaries[0]


def test_a_refused_exchange_is_recorded_and_cleanup_still_runs(
    tmp_path: Path, service: SecretsService
) -> None:
    service.refuse = True
    invocation = Invocation(_prepare(tmp_path, FakeCI(), {"fake_url": service.url}), quiet=True)
    invocation.begin("true")
    with pytest.raises(RefusedError, match="may not have a token"):
        invocation.open()
    invocation.close(77)
    assert [e["event"] for e in _events(tmp_path)][-1] == "invocation.finished"
    assert service.state() == {}


def test_invocations_in_one_process_at_once_share_nothing(
    tmp_path: Path, service: SecretsService
) -> None:
    results: dict[int, str] = {}

    def one(index: int) -> None:
        folder = tmp_path / str(index)
        folder.mkdir()
        invocation = Invocation(_prepare(folder, FakeCI(), {"fake_url": service.url}), quiet=True)
        invocation.begin("true")
        results[index] = invocation.open()["FAKE_SECRET_TOKEN"]
        invocation.close(0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results.values())) == 6
    assert len(service.state()) == 6
    assert not any(s["live"] for s in service.state().values())
    for index in range(6):
        events = _events(tmp_path / str(index))
        assert len({e["invocation_id"] for e in events}) == 1
        assert [e["event"] for e in events].count("credential.revoked") == 1


def test_recovery_ends_what_a_crashed_invocation_left_open_through_the_broker(
    tmp_path: Path, service: SecretsService
) -> None:
    ci = FakeCI()
    crashed = Invocation(_prepare(tmp_path, ci, {"fake_url": service.url}), quiet=True)
    crashed.begin("true")
    crashed.open()  # and never closed: the process died here
    assert [s["live"] for s in service.state().values()] == [True]
    ledger = str(tmp_path / "ledger.jsonl")
    # Its process is this one, still alive: only naming the invocation forces recovery.
    alive = recover(RecoveryRequest(ledger, None, None, None), _environ(tmp_path), providers=[ci])
    assert [o.action for o in alive] == ["skipped"]
    request = RecoveryRequest(ledger, crashed.plan.invocation_id, None, None)
    outcomes = recover(request, _environ(tmp_path), providers=[ci])
    (accessor,) = service.state()
    assert [(o.action, o.detail) for o in outcomes] == [
        ("revoked", f"revoke-accessor: accessor={accessor}")
    ]
    assert [s["live"] for s in service.state().values()] == [False]
    events = _events(tmp_path)
    assert events[-2]["event"] == "credential.revoked"
    assert events[-2]["recovered"] is True
    assert events[-1] == events[-1] | {"event": "invocation.finished", "recovered": True}
    assert recover(request, _environ(tmp_path), providers=[ci]) == []


def test_serve_is_refused_for_a_broker_without_an_endpoint(
    tmp_path: Path, service: SecretsService
) -> None:
    with pytest.raises(ConfigError, match="the Fake broker cannot serve"):
        _prepare(tmp_path, FakeCI(), {"fake_url": service.url, "serve": True})


def test_the_run_layer_returns_the_commands_code_and_closes(
    tmp_path: Path, service: SecretsService
) -> None:
    from nhi_invoke.invocation.process import run  # noqa: PLC0415

    given = {"ledger": str(tmp_path / "ledger.jsonl"), "fake_url": service.url}
    request = RunRequest(given, ("sh", "-c", 'test -n "$FAKE_SECRET_TOKEN" && exit 3'))
    environ = _environ(tmp_path)
    prepared = prepare(request, environ, str(tmp_path), policy=FAST, providers=[FakeCI()])
    assert run(prepared, stderr=io.StringIO()) == 3
    assert [s["live"] for s in service.state().values()] == [False]
    exited = next(e for e in _events(tmp_path) if e["event"] == "command.exited")
    assert exited["exit_code"] == 3


def _break_ledger(path: Path) -> None:
    """What a careless or hostile command can do: put a link where the ledger was."""
    path.rename(path.with_name("moved.jsonl"))
    path.symlink_to("/dev/null")


def test_a_ledger_lost_while_the_command_runs_stops_no_release(
    tmp_path: Path, service: SecretsService
) -> None:
    invocation = Invocation(_prepare(tmp_path, FakeCI(), {"fake_url": service.url}), quiet=True)
    invocation.begin("true")
    invocation.open()
    invocation.command_started()
    _break_ledger(tmp_path / "ledger.jsonl")
    invocation.command_exited(0, None)
    released = invocation.close(0)
    assert [release.method for _, release in released] == ["revoke-accessor"]
    assert [s["live"] for s in service.state().values()] == [False]
    lost = invocation.unrecorded
    assert lost is not None
    assert lost.exit_code == 74
    assert lost.message.startswith("3 ledger lines were not written (cannot open the ledger ")
    assert lost.message.endswith("); every credential was still ended")


def test_the_run_layer_exits_74_once_when_the_command_succeeded_but_the_ledger_broke(
    tmp_path: Path, service: SecretsService
) -> None:
    from nhi_invoke.invocation.process import run  # noqa: PLC0415

    ledger = tmp_path / "ledger.jsonl"
    given = {"ledger": str(ledger), "fake_url": service.url}
    breaker = 'mv "$0" "$0.moved" && ln -s /dev/null "$0"; exit "$1"'
    for code in ("0", "3"):
        request = RunRequest(given, ("sh", "-c", breaker, str(ledger), code))
        prepared = prepare(
            request, _environ(tmp_path), str(tmp_path), policy=FAST, providers=[FakeCI()]
        )
        stderr = io.StringIO()
        if code == "0":
            with pytest.raises(RecordError, match="ledger lines were not written"):
                run(prepared, stderr=stderr)
            assert "error" not in stderr.getvalue()  # said once, by whoever renders the error
        else:
            assert run(prepared, stderr=stderr) == 3  # a failed command keeps its own code
            (line,) = [x for x in stderr.getvalue().splitlines() if "error" in x]
            assert line.startswith("nhi-invoke: error: 3 ledger lines were not written")
        ledger.unlink()
        (tmp_path / "ledger.jsonl.moved").unlink()
    assert not any(s["live"] for s in service.state().values())
    assert len(service.state()) == 2


class RefusingReporting(FakeReporting):
    """A CI that refuses the outputs, as GitHub's does a value with a line break."""

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        raise ValueError("the value of x is not one printable line")


def test_step_outputs_are_published_from_memory_once_the_invocation_closes(
    tmp_path: Path, service: SecretsService
) -> None:
    ci = FakeCI()
    prepared = _prepare(tmp_path, ci, {"fake_url": service.url, "step_outputs": True})
    invocation = Invocation(prepared, quiet=True)
    invocation.begin("true")
    invocation.open()
    assert ci.reports.outputs == {}  # nothing before the command has ended
    invocation.close(0)
    assert ci.reports.outputs == {
        "invocation-id": prepared.plan.invocation_id,
        "ledger-path": str(tmp_path / "ledger.jsonl"),
        # Every known broker's outputs are there, empty when it issued nothing.
        "aws-principal-arn": "",
        "gcp-service-account": "",
    }
    assert invocation.unrecorded is None


def test_outputs_the_ci_refuses_make_the_record_incomplete(
    tmp_path: Path, service: SecretsService
) -> None:
    ci = FakeCI()
    ci.reports = RefusingReporting()
    prepared = _prepare(tmp_path, ci, {"fake_url": service.url, "step_outputs": True})
    invocation = Invocation(prepared, quiet=True)
    invocation.begin("true")
    invocation.open()
    invocation.close(0)
    assert [s["live"] for s in service.state().values()] == [False]
    lost = invocation.unrecorded
    assert lost is not None
    assert lost.exit_code == 74
    assert lost.message == (
        "the step outputs were not written: the value of x is not one printable line"
    )

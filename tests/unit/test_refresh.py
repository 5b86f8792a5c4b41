"""Refresh ahead: a served credential is re-issued in the background before its margin, the
current one is handed out at once meanwhile, and a request waits only when nothing valid is
left. And the loopback host shows nothing when a client hangs up."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from nhi_invoke import diagnostics
from nhi_invoke.brokers.grants import CHILD, Grant
from nhi_invoke.brokers.serving import Endpoint, Reply
from nhi_invoke.errors import RefusedError
from nhi_invoke.invocation.refresh import Refresher as _Refresher
from nhi_invoke.invocation.serve import CredentialHost


def _no_token(fresh: bool) -> str:
    raise AssertionError("these endpoints issue no grants of their own")


def Refresher(  # the class, with the keywords these tests do not use
    first: Grant, issue: Callable[[], Grant], margin_seconds: float, **extra: float
) -> _Refresher:
    return _Refresher(
        first, issue, margin_seconds, tokens=_no_token, record=lambda grant: None, **extra
    )


WAIT = 20.0  # the longest any condition below may take on a loaded machine


def _grant(seconds_left: float, name: str = "g") -> Grant:
    return Grant(
        broker="fake",
        purpose=CHILD,
        principal=name,
        principal_id=None,
        session_name=None,
        access_key_id=None,
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds_left),
        fingerprint=f"sha256:{name}",
    )


def _eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class SlowIssuer:
    """Issues `g1`, `g2`… each only when the test releases it."""

    def __init__(self, seconds_left: float = 600) -> None:
        self.seconds_left = seconds_left
        self.started = 0
        self.release = threading.Semaphore(0)
        self.fail_with: Exception | None = None

    def __call__(self) -> Grant:
        self.started += 1
        assert self.release.acquire(timeout=WAIT)
        if self.fail_with is not None:
            raise self.fail_with
        return _grant(self.seconds_left, f"g{self.started}")


def test_the_current_credential_is_served_while_a_reissue_is_in_flight() -> None:
    issuer = SlowIssuer()
    refresher = Refresher(_grant(60, "g0"), issuer, margin_seconds=59.9)
    refresher.start()
    try:
        _eventually(lambda: refresher.in_flight)
        # The exchange is held: every request still gets the current credential.
        assert {refresher.get().principal for _ in range(100)} == {"g0"}
        issuer.release.release()
        _eventually(lambda: refresher.current.principal == "g1")
        assert refresher.get().principal == "g1"
        assert refresher.reissued == 1
    finally:
        issuer.release.release()
        refresher.stop()


def test_nothing_is_reissued_before_the_margin() -> None:
    issuer = SlowIssuer()
    refresher = Refresher(_grant(600, "g0"), issuer, margin_seconds=60)
    refresher.start()
    time.sleep(0.2)
    refresher.stop()
    assert issuer.started == 0
    assert refresher.get().principal == "g0"


def test_a_request_waits_only_when_nothing_valid_is_left() -> None:
    issuer = SlowIssuer()
    refresher = Refresher(_grant(1, "g0"), issuer, margin_seconds=0)
    refresher.start()
    try:
        got: list[str] = []
        waiting = threading.Thread(target=lambda: got.append(refresher.get().principal))
        waiting.start()
        _eventually(lambda: issuer.started == 1)
        assert got == []  # waiting for the exchange: g0 has less than 5 s left
        issuer.release.release()
        waiting.join(WAIT)
        assert got == ["g1"]
    finally:
        issuer.release.release()
        refresher.stop()


def test_a_failed_reissue_keeps_serving_the_current_one_and_is_retried() -> None:
    issuer = SlowIssuer()
    issuer.fail_with = RefusedError("STS refused", "fix the trust policy")
    refresher = Refresher(_grant(60, "g0"), issuer, margin_seconds=59.9)
    refresher.start()
    try:
        issuer.release.release()
        _eventually(lambda: not refresher.in_flight and issuer.started == 1)
        assert refresher.get().principal == "g0"
        assert refresher.reissued == 0
    finally:
        refresher.stop()


def test_an_expired_credential_whose_reissue_fails_is_an_error_for_the_request() -> None:
    issuer = SlowIssuer()
    issuer.fail_with = RefusedError("STS refused", "fix the trust policy")
    refresher = Refresher(_grant(-1, "g0"), issuer, margin_seconds=0)
    refresher.start()
    try:
        issuer.release.release()
        issuer.release.release()
        with pytest.raises(RefusedError, match="STS refused"):
            refresher.get()
    finally:
        refresher.stop()


def test_stop_finishes_the_reissue_under_way_and_starts_none() -> None:
    issuer = SlowIssuer()
    refresher = Refresher(_grant(60, "g0"), issuer, margin_seconds=59.9)
    refresher.start()
    _eventually(lambda: refresher.in_flight)
    stopping = threading.Thread(target=refresher.stop)
    stopping.start()
    time.sleep(0.05)
    assert stopping.is_alive()  # waits for the exchange: its grant must be recorded
    issuer.release.release()
    stopping.join(WAIT)
    assert not stopping.is_alive()
    assert refresher.current.principal == "g1"
    time.sleep(0.1)
    assert issuer.started == 1  # g1 is within its margin too, but nothing starts any more


class _SlowEndpoint(Endpoint):
    def environment(self, base_url: str) -> dict[str, str]:
        return {"URL": base_url}

    def handle(self, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Reply:
        time.sleep(0.3)  # the client has hung up by now
        return Reply(200, "text/plain", "x" * 200_000)


def test_a_client_that_hangs_up_is_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    diagnostics.configure(False)
    host = CredentialHost({"slow": _SlowEndpoint()})
    host.start()
    try:
        address, port = host.address.split(":")
        for _ in range(3):
            client = socket.create_connection((address, int(port)))
            client.sendall(f"GET {host.secret_path}/slow HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            # A reset, not a polite close: the server's write fails.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        time.sleep(0.6)
    finally:
        host.stop()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "Error" not in captured.err
    assert captured.err == ""


def test_the_hosts_secrets_can_be_enumerated() -> None:
    host = CredentialHost({"slow": _SlowEndpoint()})
    try:
        assert host.secrets == (host.secret_path.lstrip("/"),)
        assert host.secret_path.lstrip("/") in host.environments()["slow"]["URL"]
    finally:
        host.stop()

"""A real client that is missing skips its tests locally, and fails them on CI."""

from __future__ import annotations

import pytest

from tests.clients.fixtures import require_client


def test_a_missing_client_skips_with_the_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"the AWS CLI is not installed \(bash"):
        require_client(False, "the AWS CLI", "bash .ci/run installs it")


def test_a_missing_client_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run every real-client test"):
        require_client(False, "gcloud", "the machine's gcloud")


def test_an_installed_client_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require_client(True, "gcloud", "the machine's gcloud")

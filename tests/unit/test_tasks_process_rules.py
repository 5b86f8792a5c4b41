"""What the Python API does with `run`'s process-wide rules: a ledger key from a file (never a
descriptor, which the next invocation would find reused), the child-process switches a
variable may set for the CLI (ignored), and a ledger that fails while a task runs (every
credential still ended; the lost lines raised as `run` exits 74, or logged when the block
already failed)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

import nhi_invoke
from nhi_invoke.errors import ConfigError, RecordError
from nhi_invoke.ledger.key import LedgerKey
from nhi_invoke.ledger.verify import verify
from tests.fake_broker.service import SecretsService
from tests.unit.tasks_fixtures import live

KEY = "a-ledger-key-of-more-than-32-characters"


def _break_ledger(environ: dict[str, str]) -> None:
    """Move the ledger away and leave a link nhi-invoke refuses to follow in its place."""
    ledger = environ["NHI_LEDGER"]
    os.rename(ledger, f"{ledger}.moved")
    os.symlink("/dev/null", ledger)


def test_a_ledger_key_file_signs_every_line_and_a_descriptor_is_refused(
    task_settings: dict[str, Any], tmp_path: Path
) -> None:
    key_file = tmp_path / "ledger-key"
    key_file.write_text(KEY)
    key_file.chmod(0o600)
    with nhi_invoke.invocation(ledger_key_file=key_file, **task_settings):
        pass
    with nhi_invoke.invocation(ledger_key_file=str(key_file), **task_settings):
        pass  # read again for the second invocation of the process
    result = verify(str(tmp_path / "ledger.jsonl"), key=LedgerKey(KEY.encode(), "file"))
    assert (result.ok, result.lines) == (True, 10)  # every line's HMAC, by the file's key
    environ = task_settings["environ"] | {"NHI_LEDGER_KEY_FILE": "fd:3"}
    for given in ({"ledger_key_file": "fd:3"}, {"environ": environ}):
        with pytest.raises(ConfigError, match="'fd:3' is a descriptor") as raised:
            nhi_invoke.invocation(**task_settings | given)
        assert raised.value.exit_code == 78


def test_serve_and_step_outputs_set_for_the_cli_are_not_the_api_s(
    task_settings: dict[str, Any], secrets_service: SecretsService, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    environ = task_settings["environ"] | {
        "NHI_SERVE": "1",
        "NHI_STEP_OUTPUTS": "1",
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(outputs),
    }
    with nhi_invoke.invocation(**task_settings | {"environ": environ}) as inv:
        # The task holds its token itself: nothing is served from this process.
        assert inv.env["FAKE_SECRET_TOKEN"].startswith("fake-secret.")
    assert not outputs.exists() or "invocation-id" not in outputs.read_text()
    assert list(live(secrets_service).values()) == [False]


def test_a_ledger_lost_while_a_task_runs_still_revokes_and_raises_at_a_normal_end(
    task_settings: dict[str, Any], secrets_service: SecretsService
) -> None:
    environ = task_settings["environ"]
    lost = pytest.raises(RecordError, match="ledger lines were not written")
    with lost as raised, nhi_invoke.invocation(**task_settings) as inv:
        _break_ledger(environ)
    assert raised.value.exit_code == 74
    assert inv.closed
    assert list(live(secrets_service).values()) == [False]
    assert Path(environ["NHI_LEDGER"]).is_symlink()  # never followed


def test_a_ledger_lost_in_a_failing_task_is_logged_and_the_task_s_error_raised(
    task_settings: dict[str, Any],
    secrets_service: SecretsService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="nhi_invoke")
    with pytest.raises(KeyError), nhi_invoke.invocation(**task_settings):  # noqa: PT012
        _break_ledger(task_settings["environ"])
        raise KeyError("lookup")
    assert list(live(secrets_service).values()) == [False]
    (logged,) = caplog.records
    assert "ledger lines were not written" in logged.getMessage()
    assert "every credential was still ended" in logged.getMessage()

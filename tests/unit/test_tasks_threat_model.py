"""What the in-process API does and does not protect against (docs/agents.md, "Threat model"),
shown rather than claimed. The attacker is a task's own tool code (a prompt-injected call, a
malicious dependency) running in the agent's process.

The first two tests show the limits: code in one task reaches another task's credentials and
the token source itself. They pass because the API does not isolate; were it ever to, they
would fail, and the documentation would have to change with them."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from typing import Any

import nhi_invoke
from nhi_invoke.tasks.api import Invocation
from tests.fake_broker.service import SecretsService
from tests.unit.tasks_fixtures import accessor, live


def _others(mine: Invocation) -> list[str]:
    """What hostile code in one task can do: find every other open invocation in memory."""
    found = []
    for candidate in gc.get_objects():
        if isinstance(candidate, Invocation) and candidate is not mine and not candidate.closed:
            found.append(candidate.env["FAKE_SECRET_TOKEN"])
    return found


def test_code_in_one_task_can_read_another_task_s_credentials(
    task_settings: dict[str, Any],
) -> None:
    other_open = threading.Event()
    done = threading.Event()
    theirs: list[str] = []

    def other_task() -> None:
        with nhi_invoke.invocation(task_id="victim", **task_settings) as inv:
            theirs.append(inv.env["FAKE_SECRET_TOKEN"])
            other_open.set()
            done.wait(30)

    victim = threading.Thread(target=other_task)
    victim.start()
    other_open.wait(30)
    try:
        with nhi_invoke.invocation(task_id="attacker", **task_settings) as mine:
            assert _others(mine) == theirs  # no isolation inside one process
    finally:
        done.set()
        victim.join(30)


def test_code_in_a_task_can_reach_the_token_source_and_mint_more(
    task_settings: dict[str, Any], secrets_service: SecretsService
) -> None:
    with nhi_invoke.invocation(**task_settings) as inv:
        source = inv._lifetime.prepared.token_source  # private, and reachable all the same
        token = source.fetch("fake-secrets")
    assert token.count(".") == 2  # a fresh OIDC token: enough to mint identities of its own


def test_credentials_never_enter_the_process_environment(
    task_settings: dict[str, Any],
) -> None:
    before = dict(os.environ)
    with nhi_invoke.invocation(**task_settings) as inv:
        token = inv.env["FAKE_SECRET_TOKEN"]
        assert dict(os.environ) == before
        assert token not in "".join(os.environ.values())
    assert dict(os.environ) == before


def test_a_tool_process_holds_its_own_task_s_credentials_and_no_other_s(
    task_settings: dict[str, Any], secrets_service: SecretsService
) -> None:
    environ = task_settings["environ"] | {"NHI_LEDGER_KEY": "k" * 32}
    settings = task_settings | {"environ": environ}
    dump = "import os, json; print(json.dumps(dict(os.environ)))"
    with (
        nhi_invoke.invocation(task_id="a", **settings) as a,
        nhi_invoke.invocation(task_id="b", **settings) as b,
    ):
        seen = subprocess.run(
            [sys.executable, "-c", dump], env=a.env, capture_output=True, text=True, check=True
        ).stdout
        assert a.env["FAKE_SECRET_TOKEN"] in seen
        assert b.env["FAKE_SECRET_TOKEN"] not in seen
        assert "NHI_LEDGER_KEY" not in seen  # a tool could forge ledger lines with it
        (principal,) = b.principals.values()
    # And once b's block ended, what a's tool saw of the world is unchanged: b is revoked.
    assert live(secrets_service)[accessor(principal)] is False

"""The audit ledger: where it is (here), typed records (`records.py`), one writer and one reader
(`store.py`), invocations read back (`history.py`), the HMAC key (`key.py`), verification
(`verify.py`)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def default_path(environ: Mapping[str, str]) -> str:
    """`$RUNNER_TEMP/nhi-invoke/ledger.jsonl` on GitHub, else the user's state directory."""
    runner_temp = environ.get("RUNNER_TEMP")
    if environ.get("GITHUB_ACTIONS") == "true" and runner_temp:
        return os.path.join(runner_temp, "nhi-invoke", "ledger.jsonl")
    state = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "nhi-invoke", "ledger.jsonl")


def path_for(given: str | None, environ: Mapping[str, str]) -> str:
    """The ledger a command reads: the one given, else NHI_LEDGER, else the default."""
    return given or environ.get("NHI_LEDGER") or default_path(environ)

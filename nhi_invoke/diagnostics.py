"""Debug lines (with --debug) and warnings, on stderr.

The logging module costs ~15 ms to import; it is loaded only when --debug asks for it.
Nothing logged here ever holds a secret: names, counts and fingerprints only.
"""

from __future__ import annotations

import sys
from typing import Any

_state = {"debug": False}


def configure(debug: bool) -> None:
    """Turn debug output on (with the logging module) or leave it off (without it)."""
    _state["debug"] = debug
    if not debug:
        return
    import logging  # noqa: PLC0415

    # Only our own loggers go down to DEBUG: third-party debug logs (SDKs, HTTP libraries)
    # can carry request bodies, and so tokens; they stay at WARNING, whichever SDK it is.
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="nhi-invoke: %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("nhi_invoke").setLevel(logging.DEBUG)


class Log:
    """A named source of debug lines and warnings."""

    def __init__(self, name: str) -> None:
        self.name = f"nhi_invoke.{name}"

    def debug(self, message: str, *args: Any) -> None:
        if _state["debug"]:
            import logging  # noqa: PLC0415

            logging.getLogger(self.name).debug(message, *args)

    def warning(self, message: str, *args: Any) -> None:
        if _state["debug"]:
            import logging  # noqa: PLC0415

            logging.getLogger(self.name).warning(message, *args)
        else:
            print(f"nhi-invoke: warning: {message % args}", file=sys.stderr, flush=True)

"""Debug lines (with --debug) and warnings, on stderr.

The logging module costs ~15 ms to import; it is loaded only when --debug asks for it.
Nothing logged here ever holds a secret: names, counts and fingerprints only.
"""

from __future__ import annotations

import sys
from typing import Any

_state = {"debug": False}
# Third-party debug logs can carry request bodies (tokens): they stay at WARNING.
QUIET_LIBRARIES = ("botocore", "urllib3", "boto3", "werkzeug", "moto", "google")


def configure(debug: bool) -> None:
    """Turn debug output on (with the logging module) or leave it off (without it)."""
    _state["debug"] = debug
    if not debug:
        return
    import logging  # noqa: PLC0415

    logging.basicConfig(
        level=logging.DEBUG,
        stream=sys.stderr,
        format="nhi-invoke: %(levelname)s %(name)s: %(message)s",
    )
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(logging.WARNING)


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

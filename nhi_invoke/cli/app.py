"""The typer app and the one place where errors are rendered."""

from __future__ import annotations

import os
import sys
import traceback

from nhi_invoke import __version__
from nhi_invoke.errors import EXIT_USAGE, NhiError

EXIT_INTERNAL = 70
# Commands that hold a secret or run a command beside one: nhi-invoke makes itself
# non-dumpable before it reads anything (`hardening.py`). `run --dry-run` holds none.
SEALED_COMMANDS = frozenset({"run", "sandbox", "revoke", "token", "audit"})


def _own_arguments(args: list[str]) -> list[str]:
    """The arguments before '--' (after it they belong to the user's command)."""
    return args[: args.index("--")] if "--" in args else args


def _error_line(text: str) -> None:
    print(f"nhi-invoke: error: {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nhi-invoke` script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        # The fast path: no typer, no cloud SDK.
        print(f"nhi-invoke {__version__}")
        return 0
    own = _own_arguments(args)
    command = next((a for a in own if not a.startswith("-")), None)
    sealed = command in SEALED_COMMANDS and "--dry-run" not in own
    if sealed:
        from nhi_invoke import hardening  # noqa: PLC0415

        sealed = hardening.make_non_dumpable()
    debug = "--debug" in own or os.environ.get("NHI_DEBUG") == "1"
    from nhi_invoke import diagnostics  # noqa: PLC0415

    diagnostics.configure(debug)
    if command in SEALED_COMMANDS:
        diagnostics.Log("cli").debug("non-dumpable: %s", "yes" if sealed else "no")

    import typer  # noqa: PLC0415 - after the --version fast path
    from typer.main import get_command  # noqa: PLC0415

    from nhi_invoke.cli.commands import app_for  # noqa: PLC0415

    try:
        result = get_command(app_for(args)).main(
            args=args, prog_name="nhi-invoke", standalone_mode=False
        )
    except typer.Exit as done:
        return int(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        # Ctrl-C before `run` installed its own handlers: nothing was minted yet.
        return 130
    except typer.TyperException as bad:
        # typer's (vendored) click usage errors: an unknown option, a bad value.
        format_message = getattr(bad, "format_message", None)
        message = format_message() if callable(format_message) else str(bad)
        context = getattr(bad, "ctx", None)
        hint = f"; fix: see '{context.command_path} --help'" if context is not None else ""
        _error_line(str(message).replace("\n", " ") + hint)
        return int(getattr(bad, "exit_code", EXIT_USAGE))
    except NhiError as error:
        if debug:
            traceback.print_exc(file=sys.stderr)
        _error_line(error.one_line())
        return error.exit_code
    except Exception as bug:
        if debug:
            traceback.print_exc(file=sys.stderr)
        _error_line(
            f"internal error ({type(bug).__name__}); fix: re-run with --debug and report it"
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0

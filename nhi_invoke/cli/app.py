"""The entry point: `run`'s common lines through its own parser (`cli/run_parser.py`),
everything else through the typer app; and the one place where errors are rendered."""

from __future__ import annotations

import errno
import os
import sys

from nhi_invoke import __version__
from nhi_invoke.errors import EXIT_CONFIG, EXIT_USAGE, NhiError

EXIT_INTERNAL = 70
# Commands that hold a secret or run a command beside one: nhi-invoke makes itself
# non-dumpable before it reads anything (`hardening.py`). `run --dry-run` holds none.
SEALED_COMMANDS = frozenset({"run", "sandbox", "revoke", "token", "audit"})
COMPLETE_VARIABLE = "_NHI_INVOKE_COMPLETE"


def _own_arguments(args: list[str]) -> list[str]:
    """The arguments before '--' (after it they belong to the user's command)."""
    return args[: args.index("--")] if "--" in args else args


# `typing` only for the checker: `--version` does not pay for importing it (nor traceback).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _print_traceback() -> None:
    import traceback  # noqa: PLC0415

    traceback.print_exc(file=sys.stderr)


def _error_line(text: str) -> None:
    print(f"nhi-invoke: error: {text}", file=sys.stderr, flush=True)


def _sentence(text: str) -> str:
    """click's message as one of ours: one line, lower case, no closing period."""
    text = " ".join(text.split()).rstrip(".")
    return text[:1].lower() + text[1:]


def usage_failure(bad: Any) -> tuple[str, int]:
    """A click usage error as our one line, and its exit code: a value that does not parse
    (or is not one of the choices) is a configuration error (78) like a value out of range;
    an unknown option or command, or a missing argument, is a usage error (2)."""
    from typer._click import exceptions  # noqa: PLC0415

    context = getattr(bad, "ctx", None)
    see = f"see '{context.command_path} -h'" if context is not None else "see 'nhi-invoke -h'"
    if isinstance(bad, exceptions.NoSuchOption):
        message = f"unknown option {bad.option_name}"
        possible = sorted(bad.possibilities or ())
        if len(possible) == 1:
            hint = f"did you mean {possible[0]}? ({see})"
        elif possible:
            hint = f"did you mean one of {', '.join(possible)}? ({see})"
        else:
            hint = see
        return f"{message}; fix: {hint}", EXIT_USAGE
    text = _sentence(bad.format_message() if hasattr(bad, "format_message") else str(bad))
    if ". Did you mean " in bad.format_message():
        text, _, suggestion = text.partition(". Did you mean ")
        see = f"did you mean {suggestion.rstrip('?')}? ({see})"
    code = EXIT_USAGE
    if isinstance(bad, exceptions.BadParameter) and not isinstance(
        bad, exceptions.MissingParameter
    ):
        code = EXIT_CONFIG
    return f"{text}; fix: {see}", code


def _complete(args: list[str]) -> int:
    """Answer the shell's completion request (`nhi-invoke completion SHELL`'s scripts)."""
    from typer._completion_classes import completion_init  # noqa: PLC0415
    from typer.main import get_command  # noqa: PLC0415

    from nhi_invoke.cli.commands import app_for  # noqa: PLC0415

    completion_init()
    try:
        get_command(app_for([])).main(
            args=args, prog_name="nhi-invoke", complete_var=COMPLETE_VARIABLE
        )
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nhi-invoke` script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        # The fast path: no typer, no cloud SDK.
        print(f"nhi-invoke {__version__}")
        return 0
    if os.environ.get(COMPLETE_VARIABLE):
        return _complete(args)
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

    try:
        if args[:1] == ["run"]:
            from nhi_invoke.cli.run_parser import lean_parameters  # noqa: PLC0415

            parameters = lean_parameters(args[1:], os.environ)
            if parameters is not None:
                # `run`'s common lines skip the CLI framework (cli/run_parser.py).
                return _lean_run(parameters)
        return _typer_main(args)
    except KeyboardInterrupt:
        # Ctrl-C before `run` installed its own handlers: nothing was minted yet.
        return 130
    except NhiError as error:
        if debug:
            _print_traceback()
        _error_line(error.one_line())
        return error.exit_code
    except Exception as bug:
        if debug:
            _print_traceback()
        _error_line(
            f"internal error ({type(bug).__name__}); fix: re-run with --debug and report it"
        )
        return EXIT_INTERNAL


class _Pacified:
    """A standard stream whose flush ignores a closed pipe (as click's PacifyFlushWrapper), so
    that the interpreter's last flush at exit reports nothing."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        try:
            self.wrapped.flush()
        except OSError as error:
            if error.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _lean_run(parameters: dict[str, Any]) -> int:
    """`run` without typer, ending as typer's command line ends: end of input is an abort
    (130), and a reader that went away (`| head`) exits 1 without a word."""
    from nhi_invoke.cli.run_arguments import from_parameters  # noqa: PLC0415
    from nhi_invoke.cli.run_execute import execute  # noqa: PLC0415

    try:
        return execute(from_parameters(parameters))
    except EOFError:
        print(file=sys.stderr)
        return 130
    except OSError as error:
        if error.errno != errno.EPIPE:
            raise
        sys.stdout = _Pacified(sys.stdout)
        sys.stderr = _Pacified(sys.stderr)
        return 1


def _typer_main(args: list[str]) -> int:
    """Every command line the lean parser does not read: typer's, with its usage errors and
    help rendered as ours; any other exception goes to `main`."""
    import typer  # noqa: PLC0415 - after the --version fast path
    from typer._click.exceptions import NoArgsIsHelpError  # noqa: PLC0415
    from typer.main import get_command  # noqa: PLC0415

    from nhi_invoke.cli.commands import app_for  # noqa: PLC0415

    try:
        result = get_command(app_for(args)).main(
            args=args, prog_name="nhi-invoke", standalone_mode=False
        )
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        return 130  # typer turns the end of input (EOFError) into Abort
    except NoArgsIsHelpError as bare:
        # `nhi-invoke` or `nhi-invoke audit` alone: the help is the answer, but no command
        # ran, so a script that meant to run one does not pass.
        print(bare.ctx.get_help() if bare.ctx is not None else "", flush=True)
        return EXIT_USAGE
    except typer.TyperException as bad:
        # typer's (vendored) click usage errors: an unknown option, a bad value.
        line, code = usage_failure(bad)
        _error_line(line)
        return code
    return result if isinstance(result, int) else 0

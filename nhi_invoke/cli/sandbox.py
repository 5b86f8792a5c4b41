"""`nhi-invoke sandbox [OPTIONS] [-- CMD]`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from nhi_invoke import brokers, install_hint
from nhi_invoke.cli.commands import app
from nhi_invoke.cli.options import PASSTHROUGH, Command, Debug, LedgerPath, Quiet
from nhi_invoke.errors import ConfigError

ALL = "all"
# "both" keeps the meaning it had when the sandbox emulated two clouds: the registry's first
# two brokers. Every broker (one whose server must be installed included) is "all".
BOTH = "both"


def _emulated() -> list[str]:
    return [d.name for d in brokers.declarations(os.environ) if d.emulator]


def _brokers(text: str) -> tuple[str, ...]:
    """`--cloud NAME[,NAME…]`, or all of them."""
    known = _emulated()
    if text == ALL:
        return tuple(known)
    if text == BOTH:
        return tuple(known[:2])
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(
            f"--cloud {text!r} is not one of {', '.join(known)} (or {ALL}, {BOTH}, or a "
            "comma-separated list)",
            f"pass --cloud {known[0]}, or --cloud all",
        )
    return names


@app.command(context_settings=PASSTHROUGH)
def sandbox(
    command: Command = None,
    step_id: Annotated[
        str | None,
        typer.Option("--step-id", help="The step id [default: sandbox-step].", metavar="TEXT"),
    ] = None,
    cloud: Annotated[
        str | None,
        typer.Option(
            help="Which identities the command gets: a broker's name, several separated by "
            "commas, all, or both (the first two, as before there were more) [default: the "
            "first broker's].",
            metavar="NAME[,NAME...]",
        ),
    ] = None,
    chained: Annotated[
        bool,
        typer.Option(
            "--chained",
            help="Go through an entry role and AssumeRole into the target, with session tags.",
        ),
    ] = False,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            help="Extra session tag (repeatable; with --chained).",
            metavar="KEY=VALUE",
        ),
    ] = None,
    ledger: LedgerPath = None,
    ready_file: Annotated[
        str | None,
        typer.Option(
            help="Write the emulators' endpoints and environment as JSON to this file (0600).",
            metavar="PATH",
        ),
    ] = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    """Run a command through `run` against embedded emulators on 127.0.0.1.

    Without a command, keep the emulators up until Ctrl-C (see --ready-file).
    """
    chosen = _brokers(cloud) if cloud is not None else ()
    if tag and not chained:
        # Checked before any emulator starts: tags ride on the chained hop only.
        raise ConfigError(
            "--tag needs the chained hop (AssumeRoleWithWebIdentity accepts no session tags)",
            "add --chained",
        )
    try:
        from nhi_invoke.sandbox.emulators import SandboxRequest  # noqa: PLC0415
        from nhi_invoke.sandbox.emulators import sandbox as run_sandbox  # noqa: PLC0415
    except ModuleNotFoundError as missing:
        raise ConfigError(
            f"the sandbox needs {missing.name}, which is not installed",
            install_hint("sandbox"),
        ) from missing
    return run_sandbox(
        SandboxRequest(
            command=tuple(command or ()),
            step_id=step_id,
            brokers=chosen,
            chained=chained,
            tags=tuple(tag or ()),
            ledger=ledger,
            ready_file=ready_file,
            quiet=quiet,
        )
    )

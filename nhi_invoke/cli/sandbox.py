"""`nhi-invoke sandbox [OPTIONS] [-- CMD]`."""

from __future__ import annotations

from typing import Annotated

import typer

from nhi_invoke.cli.commands import app
from nhi_invoke.cli.options import PASSTHROUGH, Command, Debug, LedgerPath, Quiet, StepId, Tag


@app.command(context_settings=PASSTHROUGH)
def sandbox(
    command: Command = None,
    step_id: StepId = None,
    cloud: Annotated[
        str, typer.Option(help="Which clouds the command gets: aws, gcp or both.")
    ] = "aws",
    chained: Annotated[
        bool,
        typer.Option(
            "--chained",
            help="Go through an entry role and AssumeRole into the target, with session tags.",
        ),
    ] = False,
    tag: Tag = None,
    ledger: LedgerPath = None,
    ready_file: Annotated[
        str | None,
        typer.Option(
            help="Write the emulators' endpoints and environment as JSON to this file (0600)."
        ),
    ] = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    """Run a command through `run` against embedded emulators on 127.0.0.1.

    Without a command, keep the emulators up until Ctrl-C (see --ready-file).
    """
    if cloud not in ("aws", "gcp", "both"):
        raise typer.BadParameter(f"{cloud!r} is not one of aws, gcp, both", param_hint="--cloud")
    try:
        from nhi_invoke.sandbox.emulators import SandboxInput  # noqa: PLC0415
        from nhi_invoke.sandbox.emulators import sandbox as run_sandbox  # noqa: PLC0415
    except ModuleNotFoundError as missing:
        from nhi_invoke.errors import ConfigError  # noqa: PLC0415

        raise ConfigError(
            f"the sandbox needs {missing.name}, which is not installed",
            "pip install 'nhi-invoke[sandbox]'",
        ) from missing
    return run_sandbox(
        SandboxInput(
            command=tuple(command or ()),
            step_id=step_id,
            cloud=cloud,
            chained=chained,
            tags=tuple(tag or ()),
            ledger=ledger,
            ready_file=ready_file,
            quiet=quiet,
        )
    )

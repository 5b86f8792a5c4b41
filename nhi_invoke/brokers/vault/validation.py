"""Checks of single Vault option values and of Vault's own TLS variables (exit 78 on
failure, naming the fix). No network."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from nhi_invoke.errors import ConfigError
from nhi_invoke.settings.validation import endpoint

MIN_TTL = 10
MAX_TTL = 2_764_800  # Vault's default system max TTL (768 h)
_MOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*")
_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@=-]{0,127}")
# Go's strconv.ParseBool, which the Vault and OpenBao CLIs read VAULT_SKIP_VERIFY with.
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def address(value: str) -> str:
    return endpoint("--vault-addr", value.strip())


def role(value: str) -> str:
    if not _ROLE.fullmatch(value):
        raise ConfigError(
            f"--vault-role {value[:80]!r} is not a role name",
            "give the name of the JWT auth role, e.g. --vault-role ci-deploy",
        )
    return value


def mount(flag: str, value: str) -> str:
    """A mount path or namespace: segments of letters, digits and _ . -, slashes trimmed."""
    clean = value.strip().strip("/")
    if not _MOUNT.fullmatch(clean) or ".." in clean.split("/"):
        raise ConfigError(
            f"{flag} {value[:80]!r} is not a Vault path",
            f"give it without /v1/ or auth/, e.g. {flag} {'jwt' if 'auth' in flag else 'ci'}",
        )
    return clean


def ttl(value: int) -> int:
    if not MIN_TTL <= value <= MAX_TTL:
        raise ConfigError(
            f"--vault-ttl {value} is outside {MIN_TTL}-{MAX_TTL} s",
            "ask for a short token (900 s is the default): it is renewed while the command runs",
        )
    return value


@dataclass(frozen=True)
class TlsVariables:
    """VAULT_CACERT, VAULT_CAPATH and VAULT_SKIP_VERIFY (or BAO_…) as the CLI reads them."""

    ca_file: str | None = None
    ca_path: str | None = None
    skip_verify: bool = False


def _first(environ: Mapping[str, str], suffix: str) -> tuple[str, str] | None:
    for name in (f"VAULT_{suffix}", f"BAO_{suffix}"):
        if environ.get(name):
            return name, environ[name]
    return None


def tls_variables(environ: Mapping[str, str]) -> TlsVariables:
    ca_file = _first(environ, "CACERT")
    ca_path = _first(environ, "CAPATH")
    skip = _first(environ, "SKIP_VERIFY")
    if skip is not None and skip[1] not in _TRUE + _FALSE:
        raise ConfigError(
            f"{skip[0]}={skip[1][:20]!r} is not a boolean", f"set {skip[0]} to true or false"
        )
    if ca_file is not None and not os.path.isfile(ca_file[1]):
        raise ConfigError(
            f"{ca_file[0]}={ca_file[1][:200]!r} is not a file",
            f"point {ca_file[0]} at the PEM bundle of the CA that signed Vault's certificate",
        )
    if ca_path is not None and not os.path.isdir(ca_path[1]):
        raise ConfigError(
            f"{ca_path[0]}={ca_path[1][:200]!r} is not a folder",
            f"point {ca_path[0]} at a folder of CA certificates (hashed with c_rehash)",
        )
    return TlsVariables(
        ca_file=ca_file[1] if ca_file else None,
        ca_path=ca_path[1] if ca_path else None,
        skip_verify=skip is not None and skip[1] in _TRUE,
    )

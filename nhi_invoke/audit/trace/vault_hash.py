"""The HMAC a Vault/OpenBao audit device writes for an accessor, from the device itself
(`POST /v1/sys/audit-hash/:path`): the salt never leaves the server.

API: https://openbao.org/api-docs/system/audit-hash/
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable

from nhi_invoke import net
from nhi_invoke.audit.trace.model import VaultHashing
from nhi_invoke.errors import ConfigError, RefusedError, UnavailableError
from nhi_invoke.retry import Retryable

HASH_PREFIX = "hmac-sha256:"


def hashes(accessors: Iterable[str], hashing: VaultHashing) -> dict[str, str]:
    """accessor -> the HMAC the device writes for it."""
    parts = urllib.parse.urlsplit(hashing.address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"the Vault address {hashing.address!r} is not an http(s) URL",
            "pass --vault-addr (or set VAULT_ADDR), e.g. https://vault.example.com:8200",
        )
    device = hashing.device.strip("/")
    url = f"{hashing.address.rstrip('/')}/v1/sys/audit-hash/{urllib.parse.quote(device)}"
    found = {}
    for accessor in sorted(set(accessors)):
        try:
            response = net.request(
                "POST",
                url,
                body=json.dumps({"input": accessor}).encode(),
                headers={"X-Vault-Token": hashing.token, "Content-Type": "application/json"},
            )
        except Retryable as exc:
            raise UnavailableError(
                f"cannot reach Vault at {parts.hostname}: {exc}", "check --vault-addr"
            ) from exc
        if response.status in (401, 403):
            raise RefusedError(
                f"Vault refused sys/audit-hash/{device} (HTTP {response.status})",
                "give --vault-audit-hash-token a token whose policy allows "
                f'update on "sys/audit-hash/{device}"',
            )
        if response.status != 200:
            raise ConfigError(
                f"Vault answered HTTP {response.status} to sys/audit-hash/{device}",
                "check --vault-audit-device: the path the audit device is enabled at",
            )
        try:
            value = json.loads(response.body)["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"Vault's sys/audit-hash/{device} answer has no hash", "check --vault-addr"
            ) from exc
        if isinstance(value, str) and value.startswith(HASH_PREFIX):
            found[accessor] = value
    return found

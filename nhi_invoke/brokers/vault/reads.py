"""Reading the `--vault-secret` paths with the invocation's token: each path once, every
field asked of it from that one answer (both halves of a dynamic credential come from the
same lease), values as Secrets, leases as public facts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nhi_invoke.brokers.grants import Secret
from nhi_invoke.brokers.vault.api import Answer, VaultApi, sealed_error
from nhi_invoke.brokers.vault.secret_requests import SecretRequest
from nhi_invoke.errors import ConfigError, NhiError, RefusedError


@dataclass(frozen=True)
class Lease:
    """A lease obtained with the token (a dynamic secret): it ends with the token."""

    path: str
    lease_id: str
    lease_duration: int  # as first granted, in seconds
    renewable: bool
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "lease_id": self.lease_id,
            "lease_duration": self.lease_duration,
            "renewable": self.renewable,
        }


def _text(value: object) -> str:
    # vault-action's way: strings as they are, anything else as JSON.
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _fields(answer: Answer) -> tuple[dict[str, Any], int | None]:
    """The secret's fields: KV v2 nests them (and its metadata) one level deeper."""
    data = answer.section("data")
    inner, metadata = data.get("data"), data.get("metadata")
    if isinstance(metadata, dict) and (inner is None or isinstance(inner, dict)):
        version = metadata.get("version")
        return inner or {}, version if isinstance(version, int) else None
    return data, None


def _failure(api: VaultApi, answer: Answer, path: str, policies: tuple[str, ...]) -> NhiError:
    if answer.sealed:
        return sealed_error(api.plan, f"reading {path}")
    if answer.policy_denied:
        named = ", ".join(policies) or "its policies"
        hint = f'allow it in one of them: path "{path}" {{ capabilities = ["read"] }}'
        if "/data/" not in f"/{path}":
            hint += "; or, if it is a KV v2 secret, give its API path: data/ after the mount"
        return RefusedError(
            f"Vault refused to read {path}: permission denied to the token's policies ({named})",
            hint,
        )
    if answer.token_invalid:
        return RefusedError(
            f"Vault refused the invocation's token while reading {path} (revoked or expired)",
            "check the role's token_ttl: the token must outlive the reads",
        )
    if answer.status == 404:
        hint = "check the path in --vault-secret"
        if "/data/" not in f"/{path}":
            hint += "; a KV v2 secret's API path has data/ after the mount (secret/data/ci/app)"
        shown = f": {answer.error_text}" if answer.errors else ""
        return ConfigError(f"Vault has no secret at {path} (HTTP 404{shown})", hint)
    return ConfigError(
        f"Vault answered HTTP {answer.status} reading {path}: {answer.error_text[:300]}",
        "check the path in --vault-secret",
    )


@dataclass(frozen=True)
class Answered:
    """One path's answer: its fields (secret values, not yet taken) and its lease."""

    path: str
    fields: dict[str, Any]
    lease: Lease | None
    version: int | None  # KV v2's version


def fetch(
    api: VaultApi, token: Secret, path: str, policies: tuple[str, ...], now: datetime
) -> Answered:
    """Read `path` once with the token."""
    answer = api.call("GET", path, token, what=f"reading {path} from Vault")
    if answer.status != 200:
        raise _failure(api, answer, path, policies)
    fields, version = _fields(answer)
    lease: Lease | None = None
    lease_id = answer.body.get("lease_id")
    if isinstance(lease_id, str) and lease_id:
        duration = int(answer.body.get("lease_duration") or 0)
        lease = Lease(
            path=path,
            lease_id=lease_id,
            lease_duration=duration,
            renewable=bool(answer.body.get("renewable")),
            expires_at=now + timedelta(seconds=duration),
        )
    return Answered(path=path, fields=fields, lease=lease, version=version)


def pick(answered: Answered, requests: tuple[SecretRequest, ...]) -> dict[str, Secret]:
    """Every field `requests` name, from the one answer, by variable."""
    values: dict[str, Secret] = {}
    for request in requests:
        if request.field not in answered.fields:
            names = ", ".join(sorted(str(k) for k in answered.fields)) or "none"
            raise ConfigError(
                f"the secret at {answered.path} has no field {request.field!r} "
                f"(its fields: {names})",
                "check the field name in --vault-secret",
            )
        value = _text(answered.fields[request.field])
        if "\x00" in value:  # no environment variable can hold it
            raise ConfigError(
                f"the field {request.field!r} of {answered.path} holds a NUL character",
                "store it encoded (base64, say) and decode it in the command",
            )
        values[request.variable] = Secret(value)
    return values

"""Vault's HTTP API as the broker uses it, through `nhi_invoke.net` (proxies, timeouts) with
Vault's own TLS variables; answers parsed, errors unwrapped, transient failures retried.

OpenBao and Vault word a refusal two ways: a plain `permission denied` when the token
itself is invalid (revoked, expired, unknown), and `1 error occurred:\\n\\t* permission
denied\\n\\n` when the token's policy does not allow the path (docs/vault.md).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from nhi_invoke import net
from nhi_invoke.brokers.grants import Secret
from nhi_invoke.brokers.vault.plan import VaultPlan
from nhi_invoke.errors import NhiError, UnavailableError
from nhi_invoke.retry import Retryable, RetryOutcome, RetryPolicy, call_with_retries

_WRAPPED = re.compile(r"^\d+ errors? occurred:\n\t\* (.*?)\n*$", re.DOTALL)
SEALED = "Vault is sealed"
PERMISSION_DENIED = "permission denied"


def unwrap(error: str) -> str:
    """`1 error occurred:\\n\\t* X\\n\\n` -> X; anything else as it is."""
    found = _WRAPPED.match(error)
    return found.group(1).replace("\n\t* ", "; ") if found else error


@dataclass(frozen=True)
class Answer:
    """Vault's answer: status, body (parsed JSON, {} when empty), errors and warnings."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def raw_errors(self) -> list[str]:
        errors = self.body.get("errors")
        return [str(e) for e in errors] if isinstance(errors, list) else []

    @property
    def errors(self) -> list[str]:
        return [unwrap(e) for e in self.raw_errors]

    @property
    def error_text(self) -> str:
        return "; ".join(self.errors) or "(no error text)"

    @property
    def warnings(self) -> list[str]:
        found = self.body.get("warnings")
        return [str(w) for w in found] if isinstance(found, list) else []

    @property
    def token_invalid(self) -> bool:
        """The token itself is refused (revoked, expired, unknown), not the path."""
        return self.status == 403 and self.raw_errors == [PERMISSION_DENIED]

    @property
    def policy_denied(self) -> bool:
        """The token is valid, but its policies do not allow this."""
        return self.status == 403 and not self.token_invalid

    @property
    def sealed(self) -> bool:
        return self.status == 503 and SEALED in self.raw_errors

    def section(self, name: str) -> dict[str, Any]:
        value = self.body.get(name)
        return value if isinstance(value, dict) else {}


class VaultApi:
    """One Vault server (and namespace), called with retries on transient failures."""

    def __init__(self, plan: VaultPlan, policy: RetryPolicy, retries: RetryOutcome) -> None:
        self.plan = plan
        self.policy = policy
        self.retries = retries
        self.tls = net.Tls(
            plan.ca_file,
            plan.ca_path,
            verify=not plan.skip_verify,
            label="Vault's CA settings (VAULT_CACERT, VAULT_CAPATH, VAULT_SKIP_VERIFY)",
            fix_variable="VAULT_CACERT",
        )

    def url(self, path: str) -> str:
        return f"{self.plan.address}/v1/{urllib.parse.quote(path, safe='/@:=,+-._~')}"

    def once(self, method: str, path: str, token: Secret | None = None, body: Any = None) -> Answer:
        """One request, no retry: an answer, or `Retryable` when Vault could not be reached
        (or `UnavailableError` at once when its certificate is not trusted)."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["X-Vault-Token"] = token.reveal()
        if self.plan.namespace:
            headers["X-Vault-Namespace"] = self.plan.namespace
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        from nhi_invoke.net.connection import UntrustedCertificate  # noqa: PLC0415

        try:
            response = net.request(method, self.url(path), body=data, headers=headers, tls=self.tls)
        except UntrustedCertificate as failure:
            raise UnavailableError(
                f"Vault's TLS certificate at {self.plan.address} is not trusted "
                f"({failure.verify_message})",
                "set VAULT_CACERT to the PEM bundle of the CA that signed it",
            ) from failure
        try:
            parsed = json.loads(response.body) if response.body.strip() else {}
        except ValueError:
            parsed = {}
        return Answer(response.status, parsed if isinstance(parsed, dict) else {})

    def call(
        self,
        method: str,
        path: str,
        token: Secret | None = None,
        body: Any = None,
        *,
        what: str,
    ) -> Answer:
        """A request retried on connection failures, 429 and 5xx (a sealed Vault is not
        retried: it stays sealed until an operator unseals it)."""

        def attempt() -> Answer:
            answer = self.once(method, path, token, body)
            if (answer.status == 429 or answer.status >= 500) and not answer.sealed:
                raise Retryable(f"HTTP {answer.status} from Vault: {answer.error_text}")
            return answer

        return call_with_retries(
            attempt,
            self.policy,
            outcome=self.retries,
            on_give_up=lambda failure, tries: UnavailableError(
                f"{what} failed after {tries} tries: {failure.what}",
                f"check that Vault at {self.plan.address} is reachable (VAULT_ADDR, "
                "--vault-addr, the proxy variables), then re-run",
            ),
        )


def sealed_error(plan: VaultPlan, what: str) -> NhiError:
    return UnavailableError(
        f"Vault at {plan.address} is sealed ({what} answered 503 'Vault is sealed')",
        "unseal it (bao operator unseal / vault operator unseal), or point --vault-addr at "
        "an unsealed node",
    )

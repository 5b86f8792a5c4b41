"""Entra's refusals as one-line errors that name the claim or option to fix, with their exit
codes: 77 when the federation refuses this token, 78 when an option names the wrong tenant,
app or resource, 65 when the token itself is unusable, 69 when Entra cannot reach the issuer.

Entra answers `{"error", "error_description": "AADSTS<code>: …", "error_codes": [<code>]…}`;
the codes are those users meet (docs/azure.md, "Entra's errors").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nhi_invoke.errors import (
    ConfigError,
    NhiError,
    RefusedError,
    TokenError,
    UnavailableError,
)

# Entra appends these to every description: noise in a one-line error.
_TRAILER = re.compile(r"\s*(Trace ID|Correlation ID|Timestamp):.*$", re.DOTALL)
_DETAIL_LIMIT = 240
GITHUB_SUBJECTS = (
    "GitHub subjects look like repo:OWNER/REPO:ref:refs/heads/BRANCH, "
    "repo:OWNER/REPO:environment:NAME or repo:OWNER/REPO:pull_request"
)


@dataclass(frozen=True)
class Attempt:
    """What was sent: the federation's side of it, to name in the message."""

    client_id: str
    tenant_id: str
    audience: str  # --azure-audience
    scope: str
    claims: Mapping[str, Any]  # the OIDC token's recorded claims

    def claim(self, name: str) -> str:
        value = self.claims.get(name)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return "?" if value is None else str(value)


@dataclass(frozen=True)
class EntraError:
    """Entra's answer to a refused token request."""

    status: int
    error: str
    code: int | None
    description: str  # without Entra's trace trailer

    @classmethod
    def parse(cls, status: int, body: bytes) -> EntraError:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            text = body[:_DETAIL_LIMIT].decode("utf-8", "replace")
            return cls(status, "", None, " ".join(text.split()))
        codes = data.get("error_codes")
        code = codes[0] if isinstance(codes, list) and codes and isinstance(codes[0], int) else None
        description = _TRAILER.sub("", str(data.get("error_description", "")))
        if code is None:
            found = re.match(r"AADSTS(\d+)", description)
            code = int(found.group(1)) if found else None
        return cls(status, str(data.get("error", "")), code, " ".join(description.split()))

    @property
    def shown(self) -> str:
        """Entra's words, without the code the message names already."""
        text = re.sub(r"^AADSTS\d+:\s*", "", self.description)
        return text[:_DETAIL_LIMIT] or f"HTTP {self.status} {self.error}".strip()


def _issuer(e: EntraError, a: Attempt) -> NhiError:
    return RefusedError(
        f"Entra refused the token for app {a.client_id}: no federated credential trusts its "
        f"issuer {a.claim('iss')!r} (AADSTS700211)",
        f"add a federated credential to the app with issuer {a.claim('iss')!r} exactly",
    )


def _audience(e: EntraError, a: Attempt) -> NhiError:
    return RefusedError(
        f"Entra refused the token for app {a.client_id}: its audience {a.claim('aud')!r} is "
        "not one a federated credential of the app accepts (AADSTS700212)",
        "pass --azure-audience with the audience the federated credential lists (default "
        "api://AzureADTokenExchange), or add this one to it",
    )


def _subject(e: EntraError, a: Attempt) -> NhiError:
    return RefusedError(
        f"Entra refused the token for app {a.client_id}: no federated credential matches the "
        f"subject {a.claim('sub')!r} the token carried (AADSTS700213)",
        f"add a federated credential whose subject is {a.claim('sub')!r} exactly (no "
        f"wildcards; {GITHUB_SUBJECTS})",
    )


def _subject_case(e: EntraError, a: Attempt) -> NhiError:
    return RefusedError(
        f"Entra refused the token for app {a.client_id}: a federated credential's subject "
        f"differs from the token's {a.claim('sub')!r} only in upper and lower case, and Entra "
        "compares them exactly (AADSTS7002138)",
        f"change the federated credential's subject to {a.claim('sub')!r}",
    )


def _no_match(e: EntraError, a: Attempt) -> NhiError:
    return RefusedError(
        f"Entra refused the token for app {a.client_id}: no federated credential matches its "
        f"issuer {a.claim('iss')!r}, subject {a.claim('sub')!r} and audience "
        f"{a.claim('aud')!r} (AADSTS70021)",
        "add a federated credential with exactly this issuer, subject and audience (the "
        "subject names the token's sub, not a pattern)",
    )


def _application(e: EntraError, a: Attempt) -> NhiError:
    return ConfigError(
        f"Entra knows no application {a.client_id} in tenant {a.tenant_id} (AADSTS700016)",
        "check --azure-client-id (the Application (client) ID) and --azure-tenant-id (the "
        "tenant the app or managed identity belongs to)",
    )


def _tenant(e: EntraError, a: Attempt) -> NhiError:
    return ConfigError(
        f"Entra knows no tenant {a.tenant_id!r} at this authority (AADSTS90002)",
        "check --azure-tenant-id, and --azure-cloud (a tenant lives in one Azure cloud)",
    )


def _blocked(e: EntraError, a: Attempt) -> NhiError:
    return RefusedError(
        f"Entra has blocked sign-ins of app {a.client_id} (AADSTS50053: too many failed "
        "attempts, or a source it distrusts)",
        "wait before re-running, and look at the app's sign-in logs in Entra",
    )


def _conditional_access(e: EntraError, a: Attempt) -> NhiError:
    return RefusedError(
        f"a Conditional Access policy blocks app {a.client_id} (AADSTS53003): {e.shown}",
        "ask the tenant's administrators which workload identity policy applies (location "
        "or risk) to this sign-in",
    )


def _expired(e: EntraError, a: Attempt) -> NhiError:
    expiry = a.claims.get("exp")
    when = (
        datetime.fromtimestamp(expiry, UTC).strftime("%H:%M:%SZ")
        if isinstance(expiry, int | float)
        else "?"
    )
    return TokenError(
        f"Entra found the OIDC token outside its validity (expiry {when}) although it was "
        "just fetched (AADSTS700024)",
        "check the runner's clock, and that --token-file (if given) is rewritten with fresh tokens",
    )


def _malformed(e: EntraError, a: Attempt) -> NhiError:
    return TokenError(
        f"Entra could not read the OIDC token as a JWT (AADSTS50027): {e.shown}",
        "pass the token your CI issues, unmodified",
    )


def _signature(e: EntraError, a: Attempt) -> NhiError:
    return TokenError(
        f"Entra could not verify the OIDC token's signature with the keys its issuer "
        f"{a.claim('iss')!r} publishes (AADSTS{e.code})",
        "use a token signed by the issuer itself: one your CI issued, unmodified",
    )


def _issuer_unreachable(e: EntraError, a: Attempt) -> NhiError:
    return UnavailableError(
        f"Entra could not fetch the OIDC discovery document or keys of the issuer "
        f"{a.claim('iss')!r} (AADSTS50166)",
        "the issuer's /.well-known/openid-configuration and its jwks_uri must be reachable "
        "from the internet over https",
    )


def _scope(e: EntraError, a: Attempt) -> NhiError:
    return ConfigError(
        f"Entra refused the scope {a.scope!r} (AADSTS{e.code}): {e.shown}",
        "pass --azure-scope as <resource>/.default of an API in the tenant (its application "
        "ID URI or client id), e.g. https://management.azure.com/.default",
    )


def _disabled(e: EntraError, a: Attempt) -> NhiError:
    return RefusedError(
        f"app {a.client_id} is disabled in tenant {a.tenant_id} (AADSTS7000112)",
        "enable its service principal, or use another identity",
    )


_BY_CODE: Mapping[int, Callable[[EntraError, Attempt], NhiError]] = {
    700211: _issuer,
    700212: _audience,
    700213: _subject,
    7002138: _subject_case,
    70021: _no_match,
    700016: _application,
    90002: _tenant,
    50053: _blocked,
    53003: _conditional_access,
    700024: _expired,
    50027: _malformed,
    700027: _signature,
    7000272: _signature,
    50166: _issuer_unreachable,
    1002012: _scope,
    70011: _scope,
    500011: _scope,
    7000112: _disabled,
}
EXPIRED = 700024


def refusal(error: EntraError, attempt: Attempt) -> NhiError:
    """The error for Entra's refusal; an unknown code keeps Entra's own words."""
    handler = _BY_CODE.get(error.code or 0)
    if handler is not None:
        return handler(error, attempt)
    kind = ConfigError if error.error in ("invalid_request", "invalid_scope") else RefusedError
    code = f" (AADSTS{error.code})" if error.code is not None else ""
    return kind(
        f"Entra refused the token request for app {attempt.client_id} in tenant "
        f"{attempt.tenant_id}: {error.shown}{code}",
        "look the AADSTS code up in Microsoft's error reference "
        "(https://login.microsoftonline.com/error?code=<code>)",
    )

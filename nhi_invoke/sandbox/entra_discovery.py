"""Discovery in both directions: the documents MSAL reads from the Entra emulator, and the
signing keys the emulator reads from an external issuer (as Entra does, through the issuer's
`/.well-known/openid-configuration` and its `jwks_uri`)."""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from typing import Any

import jwt

from nhi_invoke.sandbox import entra_errors as refuse

FETCH_TIMEOUT_SECONDS = 5


def openid_configuration(base: str, tenant_id: str) -> dict[str, Any]:
    """The v2.0 OpenID configuration of one tenant, shaped as Entra's."""
    root = f"{base}/{tenant_id}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{root}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "ver"],
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
        "msgraph_host": "graph.microsoft.com",
    }


def instance_metadata(base: str, authorization_endpoint: str) -> dict[str, Any] | None:
    """MSAL's instance discovery: where the tenant's OpenID configuration is, or None when
    the authorization endpoint is not on this host."""
    ours = urllib.parse.urlsplit(base)
    asked = urllib.parse.urlsplit(authorization_endpoint)
    segments = asked.path.strip("/").split("/")
    # MSAL names the instance by host name alone (it drops the port), as Entra's hosts have none.
    if (asked.scheme, asked.hostname) != (ours.scheme, ours.hostname) or not segments[0]:
        return None
    return {
        "tenant_discovery_endpoint": (
            f"{base}/{segments[0]}/v2.0/.well-known/openid-configuration"
        ),
        "api-version": "1.1",
        "metadata": [
            {
                "preferred_network": ours.netloc,
                "preferred_cache": ours.netloc,
                "aliases": [ours.netloc],
            }
        ],
    }


class IssuerKeys:
    """Signing keys of the issuers federated credentials name, fetched on first use and again
    when a token names a key not seen yet (the issuer rotated)."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, jwt.PyJWK]] = {}
        self._lock = threading.Lock()
        # The emulator talks to loopback issuers only: no proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def key(self, issuer: str, key_id: str) -> jwt.PyJWK:
        with self._lock:
            keys = self._keys.get(issuer)
        if keys is None or key_id not in keys:
            keys = self._fetch(issuer)
            with self._lock:
                self._keys[issuer] = keys
        if key_id not in keys:
            raise refuse.signing_key_unknown(key_id, issuer)
        return keys[key_id]

    def _fetch(self, issuer: str) -> dict[str, jwt.PyJWK]:
        try:
            discovery = self._get(issuer.rstrip("/") + "/.well-known/openid-configuration")
            jwks = self._get(str(discovery["jwks_uri"]))
            return {str(k["kid"]): jwt.PyJWK(k) for k in jwks["keys"] if "kid" in k}
        except (OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
            raise refuse.issuer_unreachable() from exc

    def _get(self, url: str) -> Any:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url}")
        with self._opener.open(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            return json.load(response)

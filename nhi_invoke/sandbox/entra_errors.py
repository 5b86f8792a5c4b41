"""The refusals of the Entra emulator, worded as Microsoft Entra ID words them.

Codes, `error` values and texts come from Entra's own answers as users have reported them
(Azure/azure-workload-identity #340, #616, #1200, #1232, #642; Azure/login #180, #482, #515;
AzureAD MSAL issues) and from Microsoft's error-code reference
(learn.microsoft.com/entra/identity-platform/reference-error-codes); docs/azure.md cites them.
Entra answers `invalid_client` with HTTP 401 and the other OAuth errors with 400.
"""

from __future__ import annotations

import datetime
from typing import Any

WIF_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
_FIC_FIELDS = (
    "your federated identity credential Subject, Audience and Issuer against the presented "
    "assertion."
)
# Entra's 700211/700212 say "Please check", its 700213/7002138 "Check" (both seen in 2024-25).
_PLEASE_CHECK = f"Please check {_FIC_FIELDS}"
_CHECK_FIC = f"Check {_FIC_FIELDS}"


class EntraRefusal(Exception):
    """One AADSTS error: its code, OAuth error, HTTP status and text (without the code)."""

    def __init__(self, code: int, error: str, text: str) -> None:
        super().__init__(f"AADSTS{code}: {text}")
        self.code = code
        self.error = error
        self.text = text

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400

    def body(self, trace_id: str, correlation_id: str, now: datetime.datetime) -> dict[str, Any]:
        """The JSON body Entra sends: the description ends with the trace, correlation, time."""
        timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.text} Trace ID: {trace_id} "
                f"Correlation ID: {correlation_id} Timestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def entra_time(moment: float) -> str:
    """Entra's timestamps in 700024: seven fractional digits and a Z."""
    stamp = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def tenant_not_found(tenant: str) -> EntraRefusal:
    return EntraRefusal(
        90002,
        "invalid_tenant",
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant.",
    )


def missing_parameter(name: str) -> EntraRefusal:
    return EntraRefusal(
        900144,
        "invalid_request",
        f"The request body must contain the following parameter: '{name}'.",
    )


def unsupported_grant_type(grant_type: str) -> EntraRefusal:
    return EntraRefusal(
        70003,
        "unsupported_grant_type",
        f"The app requested an unsupported grant type '{grant_type}'.",
    )


def application_not_found(client_id: str, directory: str) -> EntraRefusal:
    return EntraRefusal(
        700016,
        "unauthorized_client",
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{directory}'. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant. You may have "
        "sent your authentication request to the wrong tenant.",
    )


def sign_in_blocked() -> EntraRefusal:
    """IdsLocked: Entra blocks the sign-ins (too many failures, or a source it distrusts)."""
    return EntraRefusal(
        50053,
        "invalid_grant",
        "The account is locked, you've tried to sign in too many times with an incorrect user "
        "ID or password.",
    )


def assertion_missing() -> EntraRefusal:
    return EntraRefusal(
        7000218,
        "invalid_client",
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )


def assertion_malformed() -> EntraRefusal:
    return EntraRefusal(50027, "invalid_request", "JWT token is invalid or malformed.")


def no_issuer_match(issuer: str) -> EntraRefusal:
    return EntraRefusal(
        700211,
        "invalid_client",
        f"No matching federated identity record found for presented assertion issuer "
        f"'{issuer}'. {_PLEASE_CHECK} {WIF_DOCS}",
    )


def no_audience_match(audience: str) -> EntraRefusal:
    return EntraRefusal(
        700212,
        "invalid_client",
        f"No matching federated identity record found for presented assertion audience "
        f"'{audience}'. {_PLEASE_CHECK} {WIF_DOCS}",
    )


def no_subject_match(subject: str) -> EntraRefusal:
    return EntraRefusal(
        700213,
        "invalid_client",
        f"No matching federated identity record found for presented assertion subject "
        f"'{subject}'. {_CHECK_FIC} {WIF_DOCS}",
    )


def subject_case_mismatch(subject: str) -> EntraRefusal:
    return EntraRefusal(
        7002138,
        "invalid_client",
        f"No matching federated identity record found for presented assertion subject "
        f"'{subject}'. The subject matches with case-insensitive comparison, but not with "
        f"case-sensitive comparison. {_CHECK_FIC} See documentation at: {WIF_DOCS}.",
    )


def no_federated_match(issuer: str, subject: str, audience: str) -> EntraRefusal:
    """The older single code that names all three claims (still seen in the wild)."""
    return EntraRefusal(
        70021,
        "invalid_request",
        "No matching federated identity record found for presented assertion. "
        f"Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. "
        f"Assertion Audience: '{audience}'. {WIF_DOCS}",
    )


def issuer_unreachable() -> EntraRefusal:
    return EntraRefusal(50166, "invalid_request", "Request to External OIDC endpoint failed.")


def signing_key_unknown(key_id: str, issuer: str) -> EntraRefusal:
    return EntraRefusal(
        7000272,
        "invalid_client",
        f"The certificate with identifier {key_id} used to sign the federated credential could "
        f"not be found in the metadata of identity provider {issuer}. Please validate that your "
        "Identity Provider's metadata exposes the key used to sign the incoming token.",
    )


def bad_signature() -> EntraRefusal:
    return EntraRefusal(700027, "invalid_client", "Client assertion failed signature validation.")


def assertion_out_of_time(now: float, not_before: float, expiry: float) -> EntraRefusal:
    return EntraRefusal(
        700024,
        "invalid_client",
        f"Client assertion is not within its valid time range. Current time: {entra_time(now)}, "
        f"assertion valid from {entra_time(not_before)}, expiry time of assertion "
        f"{entra_time(expiry)}. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )


def scope_not_default(scope: str) -> EntraRefusal:
    return EntraRefusal(
        1002012,
        "invalid_scope",
        f"The provided value for scope {scope} is not valid. Client credential flows must have "
        "a scope value with /.default suffixed to the resource identifier (application ID URI).",
    )


def scope_invalid(scope: str) -> EntraRefusal:
    return EntraRefusal(
        70011,
        "invalid_scope",
        f"The provided value for the input parameter 'scope' is not valid. The scope {scope} "
        "is not valid.",
    )


def resource_not_found(resource: str, tenant: str) -> EntraRefusal:
    return EntraRefusal(
        500011,
        "invalid_resource",
        f"The resource principal named {resource} was not found in the tenant named {tenant}. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant.",
    )


def unknown_instance() -> EntraRefusal:
    return EntraRefusal(50049, "invalid_instance", "Unknown or invalid instance.")

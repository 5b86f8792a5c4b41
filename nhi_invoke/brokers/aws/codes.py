"""AWS error codes, once: which are worth a retry, which mean a fresh OIDC token, which are
our request's fault (STS's query API and IAM's share the same codes)."""

from __future__ import annotations

RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceFailure",
        "InternalFailure",
        "InternalError",
        "IDPCommunicationError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)
TOKEN_CODES = frozenset({"InvalidIdentityToken", "ExpiredTokenException", "ExpiredToken"})
CONFIG_CODES = frozenset(
    {
        "ValidationError",
        "MalformedPolicyDocument",
        "PackedPolicyTooLarge",
        "RegionDisabledException",
        "InvalidParameterValue",
        "MissingParameter",
    }
)


def retryable(code: str, status: int) -> bool:
    return code in RETRYABLE_CODES or status >= 500

"""The child's environment: what is injected, what is stripped. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nhi_invoke.clouds.interface import Grant

ACTIVE_VARIABLE = "NHI_INVOKE_ACTIVE"
ALWAYS_SET = ("NHI_INVOCATION_ID", "NHI_STEP_ID", ACTIVE_VARIABLE)
AWS_SET = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_SDK_UA_APP_ID",
)
# Anything that would let the SDK find another identity than the one we hand over.
AWS_REMOVED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_SECURITY_TOKEN",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
)
AWS_REMOVED_PREFIXES = ("AWS_CONTAINER_CREDENTIALS_", "AWS_CONTAINER_AUTHORIZATION_TOKEN")


def _removed(name: str, token_variables: Iterable[str]) -> bool:
    return (
        name in AWS_REMOVED
        or name in AWS_SET
        or name.startswith(AWS_REMOVED_PREFIXES)
        or name in token_variables
    )


def removed_names(environ: Mapping[str, str], token_variables: Iterable[str]) -> list[str]:
    """The inherited variables the child will not see (names only, for the plan and logs)."""
    stripped = tuple(token_variables)
    return sorted(n for n in environ if _removed(n, stripped) and n not in ALWAYS_SET)


def build(
    environ: Mapping[str, str],
    grant: Grant,
    *,
    invocation_id: str,
    step_id: str,
    region: str,
    token_variables: Iterable[str],
) -> dict[str, str]:
    """The parent's environment, cleaned of other identities, plus this invocation's."""
    stripped = tuple(token_variables)
    env = {k: v for k, v in environ.items() if not _removed(k, stripped)}
    env.update(grant.child_environment())
    env.update(
        {
            "AWS_CREDENTIAL_EXPIRATION": grant.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # Shows in CloudTrail's userAgent for every call the command makes.
            "AWS_SDK_UA_APP_ID": f"nhi/{invocation_id}",
            "NHI_INVOCATION_ID": invocation_id,
            "NHI_STEP_ID": step_id,
            ACTIVE_VARIABLE: invocation_id,
        }
    )
    return env

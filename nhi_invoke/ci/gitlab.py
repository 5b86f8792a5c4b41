"""GitLab CI: tokens come from `id_tokens:`, minted by GitLab before the job starts.

GitLab lets the pipeline author name the variable, so nhi-invoke looks in a documented set
of names (`NHI_ID_TOKEN`, any `NHI_ID_TOKEN_<NAME>`, `GITLAB_OIDC_TOKEN`) and takes the one
whose audience matches. Declare one per audience, e.g. `NHI_ID_TOKEN_<BROKER>`.
"""

from __future__ import annotations

from collections.abc import Mapping

from nhi_invoke import oidc
from nhi_invoke.ci.interface import CIContext, NoReporting, Reporting, env_value
from nhi_invoke.errors import ConfigError, TokenError
from nhi_invoke.retry import RetryPolicy

TOKEN_PREFIX = "NHI_ID_TOKEN_"  # noqa: S105 - a variable name
FIXED_TOKEN_VARIABLES = ("NHI_ID_TOKEN", "GITLAB_OIDC_TOKEN")


def token_variables(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The ID token variables nhi-invoke reads, in the order it looks at them."""
    named = sorted(n for n in environ if n.startswith(TOKEN_PREFIX))
    return (FIXED_TOKEN_VARIABLES[0], *named, FIXED_TOKEN_VARIABLES[1])


class GitLabCI:
    name = "gitlab"

    def context(self, environ: Mapping[str, str]) -> CIContext | None:
        if environ.get("GITLAB_CI") != "true":
            return None
        job = env_value(environ, "CI_JOB_NAME")
        return CIContext(
            provider=self.name,
            repository=env_value(environ, "CI_PROJECT_PATH"),
            run_id=env_value(environ, "CI_PIPELINE_ID"),
            # GitLab has no attempt counter: a retried job gets a new CI_JOB_ID instead.
            run_attempt=None,
            job=job,
            step=job,
            ref=env_value(environ, "CI_COMMIT_REF_NAME"),
            sha=env_value(environ, "CI_COMMIT_SHA"),
            actor=env_value(environ, "GITLAB_USER_LOGIN"),
            workflow=env_value(environ, "CI_CONFIG_PATH"),
            token_variables=(*token_variables(environ), "CI_JOB_JWT", "CI_JOB_JWT_V2"),
        )

    def fetch_token(self, environ: Mapping[str, str], audience: str, policy: RetryPolicy) -> str:
        names = token_variables(environ)
        present = [(name, value) for name in names if (value := env_value(environ, name))]
        for _name, value in present:
            try:
                if audience in oidc.decode_unverified(value).audiences:
                    return value
            except TokenError:
                continue
        if len(present) == 1:
            # One token only: hand it to the pre-flight check, which names its audience.
            return present[0][1]
        raise ConfigError(
            f"this GitLab job has no ID token for the audience {audience!r}",
            f"add 'id_tokens: {{NHI_ID_TOKEN: {{aud: {audience}}}}}' to the job "
            f"(or name it {TOKEN_PREFIX}<NAME>, or GITLAB_OIDC_TOKEN)",
        )

    def reporting(self, environ: Mapping[str, str]) -> Reporting:
        # No runtime masking, summary page or step outputs to write to.
        return NoReporting()

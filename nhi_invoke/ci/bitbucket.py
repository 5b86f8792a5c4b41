"""Bitbucket Pipelines: `BITBUCKET_STEP_OIDC_TOKEN` for steps with `oidc: true`."""

from __future__ import annotations

from collections.abc import Mapping

from nhi_invoke.ci.interface import CIContext, NoReporting, Reporting, env_value
from nhi_invoke.errors import ConfigError
from nhi_invoke.retry import RetryPolicy

TOKEN_VARIABLE = "BITBUCKET_STEP_OIDC_TOKEN"  # noqa: S105 - a variable name


class Bitbucket:
    name = "bitbucket"

    def context(self, environ: Mapping[str, str]) -> CIContext | None:
        if env_value(environ, "BITBUCKET_BUILD_NUMBER") is None:
            return None
        return CIContext(
            provider=self.name,
            repository=env_value(environ, "BITBUCKET_REPO_FULL_NAME"),
            run_id=env_value(environ, "BITBUCKET_BUILD_NUMBER"),
            run_attempt=None,
            job=None,
            step=env_value(environ, "BITBUCKET_STEP_UUID"),
            ref=env_value(environ, "BITBUCKET_BRANCH") or env_value(environ, "BITBUCKET_TAG"),
            sha=env_value(environ, "BITBUCKET_COMMIT"),
            actor=env_value(environ, "BITBUCKET_STEP_TRIGGERER_UUID"),
            workflow=env_value(environ, "BITBUCKET_PIPELINE_UUID"),
            token_variables=(TOKEN_VARIABLE,),
        )

    def fetch_token(self, environ: Mapping[str, str], audience: str, policy: RetryPolicy) -> str:
        token = env_value(environ, TOKEN_VARIABLE)
        if token is None:
            raise ConfigError(
                f"Bitbucket provided no {TOKEN_VARIABLE}",
                "add 'oidc: true' to the step in bitbucket-pipelines.yml",
            )
        # Bitbucket fixes the audience (ari:cloud:bitbucket::workspace/…); the pre-flight
        # check names it if the cloud side expects another.
        return token

    def reporting(self, environ: Mapping[str, str]) -> Reporting:
        # No runtime masking, summary page or step outputs to write to.
        return NoReporting()

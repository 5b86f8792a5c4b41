"""CircleCI: `CIRCLE_OIDC_TOKEN_V2`, or the CLI for any other audience."""

from __future__ import annotations

import json
from collections.abc import Mapping

from nhi_invoke import oidc
from nhi_invoke.ci.interface import CIContext, NoReporting, Reporting, env_value
from nhi_invoke.errors import ConfigError, TokenError
from nhi_invoke.retry import RetryPolicy

TOKEN_VARIABLES = ("CIRCLE_OIDC_TOKEN_V2", "CIRCLE_OIDC_TOKEN")


class CircleCI:
    name = "circleci"

    def context(self, environ: Mapping[str, str]) -> CIContext | None:
        if environ.get("CIRCLECI") != "true":
            return None
        owner = env_value(environ, "CIRCLE_PROJECT_USERNAME")
        repo = env_value(environ, "CIRCLE_PROJECT_REPONAME")
        return CIContext(
            provider=self.name,
            repository=f"{owner}/{repo}" if owner and repo else repo,
            run_id=env_value(environ, "CIRCLE_WORKFLOW_ID"),
            run_attempt=None,
            job=env_value(environ, "CIRCLE_JOB"),
            step=env_value(environ, "CIRCLE_JOB"),
            ref=env_value(environ, "CIRCLE_BRANCH") or env_value(environ, "CIRCLE_TAG"),
            sha=env_value(environ, "CIRCLE_SHA1"),
            actor=env_value(environ, "CIRCLE_USERNAME"),
            workflow=env_value(environ, "CIRCLE_WORKFLOW_ID"),
            token_variables=TOKEN_VARIABLES,
        )

    def fetch_token(self, environ: Mapping[str, str], audience: str, policy: RetryPolicy) -> str:
        token = env_value(environ, "CIRCLE_OIDC_TOKEN_V2") or env_value(
            environ, "CIRCLE_OIDC_TOKEN"
        )
        if token is None:
            raise ConfigError(
                "CircleCI provided no CIRCLE_OIDC_TOKEN_V2",
                "run the job in a context (CircleCI issues OIDC tokens only to jobs that use one)",
            )
        try:
            if audience in oidc.decode_unverified(token).audiences:
                return token
        except TokenError:
            return token  # the pre-flight check names what is wrong with it
        # The default token's audience is the organization id; the CLI mints other audiences.
        claims = json.dumps({"aud": audience})
        # The agent's CLI (and subprocess) only to ask it: detection needs neither.
        from nhi_invoke.ci import agent_cli  # noqa: PLC0415

        try:
            return agent_cli.request_token(
                ["circleci", "run", "oidc", "get", "--claims", claims],
                environ,
                policy,
                "pass your organization id as the audience (the broker's --<name>-audience "
                f"option), or install the circleci CLI to request {audience!r}",
            )
        except ConfigError:
            return token  # no CLI: the pre-flight check reports the audience mismatch

    def reporting(self, environ: Mapping[str, str]) -> Reporting:
        # No runtime masking, summary page or step outputs to write to.
        return NoReporting()

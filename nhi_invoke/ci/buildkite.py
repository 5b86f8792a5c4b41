"""Buildkite: tokens from `buildkite-agent oidc request-token`."""

from __future__ import annotations

from collections.abc import Mapping

from nhi_invoke.ci.interface import CIContext, NoReporting, Reporting, env_value
from nhi_invoke.retry import RetryPolicy


class Buildkite:
    name = "buildkite"

    def context(self, environ: Mapping[str, str]) -> CIContext | None:
        if environ.get("BUILDKITE") != "true":
            return None
        org = env_value(environ, "BUILDKITE_ORGANIZATION_SLUG")
        pipeline = env_value(environ, "BUILDKITE_PIPELINE_SLUG")
        retries = env_value(environ, "BUILDKITE_RETRY_COUNT")
        return CIContext(
            provider=self.name,
            repository=f"{org}/{pipeline}" if org and pipeline else pipeline,
            run_id=env_value(environ, "BUILDKITE_BUILD_NUMBER"),
            # BUILDKITE_RETRY_COUNT counts retries from 0; attempts count from 1 as on GitHub.
            run_attempt=str(int(retries) + 1) if retries and retries.isdigit() else None,
            job=env_value(environ, "BUILDKITE_LABEL"),
            step=env_value(environ, "BUILDKITE_STEP_KEY"),
            ref=env_value(environ, "BUILDKITE_BRANCH"),
            sha=env_value(environ, "BUILDKITE_COMMIT"),
            actor=env_value(environ, "BUILDKITE_BUILD_CREATOR"),
            workflow=pipeline,
            # The agent token also uploads artifacts and meta-data, so it stays; the agent
            # scopes OIDC requests to this job.
            token_variables=(),
        )

    def fetch_token(self, environ: Mapping[str, str], audience: str, policy: RetryPolicy) -> str:
        # The agent's CLI (and subprocess) only to ask it: detection needs neither.
        from nhi_invoke.ci import agent_cli  # noqa: PLC0415

        return agent_cli.request_token(
            ["buildkite-agent", "oidc", "request-token", "--audience", audience],
            environ,
            policy,
            "run the step on a Buildkite agent v3.48 or newer",
        )

    def reporting(self, environ: Mapping[str, str]) -> Reporting:
        # No runtime masking, summary page or step outputs to write to.
        return NoReporting()

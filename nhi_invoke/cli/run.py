"""`nhi-invoke run [OPTIONS] -- CMD [ARG...]`."""

from __future__ import annotations

import os

import typer

from nhi_invoke.cli.commands import app
from nhi_invoke.cli.options import (
    PASSTHROUGH,
    AwsAudience,
    AwsDuration,
    AwsOidcRoleArn,
    AwsPolicyArn,
    AwsRegion,
    AwsRevoke,
    AwsRoleArn,
    AwsSessionPolicy,
    Command,
    ConfigPath,
    Debug,
    DryRun,
    ExpectDuration,
    GcpAudience,
    GcpLifetime,
    GcpProject,
    GcpProvider,
    GcpScope,
    GcpServiceAccount,
    Json,
    KeepOidcEnv,
    LedgerPath,
    Quiet,
    RefreshMargin,
    Serve,
    SourceIdentity,
    StepId,
    Tag,
    Timeout,
    TokenEnv,
    TokenFile,
)
from nhi_invoke.config import RunFlags


@app.command(context_settings=PASSTHROUGH)
def run(
    command: Command = None,
    step_id: StepId = None,
    aws_role_arn: AwsRoleArn = None,
    aws_oidc_role_arn: AwsOidcRoleArn = None,
    aws_region: AwsRegion = None,
    aws_duration: AwsDuration = None,
    aws_session_policy: AwsSessionPolicy = None,
    aws_policy_arn: AwsPolicyArn = None,
    tag: Tag = None,
    aws_source_identity: SourceIdentity = None,
    aws_audience: AwsAudience = None,
    aws_revoke: AwsRevoke = None,
    gcp_provider: GcpProvider = None,
    gcp_service_account: GcpServiceAccount = None,
    gcp_scope: GcpScope = None,
    gcp_lifetime: GcpLifetime = None,
    gcp_project: GcpProject = None,
    gcp_audience: GcpAudience = None,
    token_file: TokenFile = None,
    token_env: TokenEnv = None,
    ledger: LedgerPath = None,
    config: ConfigPath = None,
    keep_oidc_env: KeepOidcEnv = None,
    serve: Serve = None,
    timeout: Timeout = None,
    refresh_margin: RefreshMargin = None,
    expect_duration: ExpectDuration = None,
    dry_run: DryRun = False,
    json: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> int:
    """Run a command with credentials minted for this one invocation."""
    if not command:
        raise typer.BadParameter("no command given; put it after '--'", param_hint="CMD")
    flags = RunFlags(
        step_id=step_id,
        aws_role_arn=aws_role_arn,
        aws_oidc_role_arn=aws_oidc_role_arn,
        aws_region=aws_region,
        aws_duration=aws_duration,
        aws_session_policy=aws_session_policy,
        aws_policy_arns=tuple(aws_policy_arn or ()),
        tags=tuple(tag or ()),
        aws_source_identity=aws_source_identity,
        aws_audience=aws_audience,
        aws_revoke=aws_revoke,
        gcp_provider=gcp_provider,
        gcp_service_account=gcp_service_account,
        gcp_scopes=tuple(gcp_scope or ()),
        gcp_lifetime=gcp_lifetime,
        gcp_project=gcp_project,
        gcp_audience=gcp_audience,
        token_file=token_file,
        token_env=token_env,
        ledger=ledger,
        config=config,
        keep_oidc_env=keep_oidc_env,
        serve=serve,
        timeout=timeout,
        refresh_margin=refresh_margin,
        expect_duration=expect_duration,
    )
    from nhi_invoke.invocation import RunInput, execute, prepare  # noqa: PLC0415

    run_input = RunInput(flags=flags, command=tuple(command), quiet=quiet)
    prepared = prepare(run_input, os.environ, os.getcwd())
    if dry_run:
        from nhi_invoke import render  # noqa: PLC0415 - rich only when a table is drawn

        render.plan(prepared.plan, as_json=json)
        return 0
    return execute(prepared, quiet=quiet)

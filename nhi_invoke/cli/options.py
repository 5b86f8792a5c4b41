"""Option types shared by the commands (one definition, one help text, one variable)."""

from __future__ import annotations

from typing import Annotated

import typer

PASSTHROUGH = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}

StepId = Annotated[
    str | None,
    typer.Option(
        "--step-id",
        help="The step this invocation serves [env: NHI_STEP_ID; default: from the CI].",
    ),
]
AwsRoleArn = Annotated[
    str | None,
    typer.Option(help="Role the command's credentials belong to [env: NHI_AWS_ROLE_ARN]."),
]
AwsOidcRoleArn = Annotated[
    str | None,
    typer.Option(
        help="Entry role trusted for the OIDC "
        "provider; chains into --aws-role-arn with "
        "session tags [env: NHI_AWS_OIDC_ROLE_ARN]."
    ),
]
AwsRegion = Annotated[
    str | None,
    typer.Option(
        help="STS region, also given to the command "
        "[env: NHI_AWS_REGION, AWS_REGION; default: "
        "us-east-1]."
    ),
]
AwsDuration = Annotated[
    int | None,
    typer.Option(
        help="Session seconds, 900-43200 (3600 when chained) [env: NHI_AWS_DURATION; default: 900]."
    ),
]
AwsSessionPolicy = Annotated[
    str | None,
    typer.Option(
        help="JSON file: an inline session policy narrowing the role [env: NHI_AWS_SESSION_POLICY]."
    ),
]
AwsPolicyArn = Annotated[
    list[str] | None, typer.Option("--aws-policy-arn", help="Managed session policy (repeatable).")
]
Tag = Annotated[
    list[str] | None,
    typer.Option("--tag", help="Extra session tag KEY=VALUE (repeatable; chained mode)."),
]
SourceIdentity = Annotated[
    bool | None,
    typer.Option(
        "--aws-source-identity/--no-aws-source-identity",
        help="Set SourceIdentity to the invocation id on the chained hop [default: on when "
        "chained].",
    ),
]
AwsAudience = Annotated[
    str | None,
    typer.Option(help="Audience of the OIDC token for AWS [default: sts.amazonaws.com]."),
]
AwsRevoke = Annotated[
    bool | None,
    typer.Option(
        "--aws-revoke/--no-aws-revoke",
        help="When the command ends, deny its session with an inline policy on the target "
        "role (chained mode) [env: NHI_AWS_REVOKE].",
    ),
]
GcpProvider = Annotated[
    str | None,
    typer.Option(
        help="Workload identity provider: projects/NUMBER/locations/global/"
        "workloadIdentityPools/POOL/providers/PROVIDER [env: NHI_GCP_PROVIDER]."
    ),
]
GcpServiceAccount = Annotated[
    str | None,
    typer.Option(
        help="Service account to impersonate; without it the federated token is handed over "
        "[env: NHI_GCP_SERVICE_ACCOUNT]."
    ),
]
GcpScope = Annotated[
    list[str] | None,
    typer.Option(
        "--gcp-scope",
        help="OAuth scope (repeatable) [default: https://www.googleapis.com/auth/cloud-platform].",
    ),
]
GcpLifetime = Annotated[
    int | None,
    typer.Option(help="Access token seconds, 1-43200 [env: NHI_GCP_LIFETIME; default: 600]."),
]
GcpProject = Annotated[
    str | None,
    typer.Option(help="Default project for the command [env: NHI_GCP_PROJECT]."),
]
GcpAudience = Annotated[
    str | None,
    typer.Option(
        help="Audience of the OIDC token for GCP [default: https://iam.googleapis.com/<provider>]."
    ),
]
TokenFile = Annotated[
    str | None, typer.Option(help="Read the OIDC token from this file [env: NHI_TOKEN_FILE].")
]
TokenEnv = Annotated[str | None, typer.Option(help="Read the OIDC token from this variable.")]
LedgerPath = Annotated[
    str | None, typer.Option("--ledger", help="Audit ledger path [env: NHI_LEDGER].")
]
ConfigPath = Annotated[
    str | None,
    typer.Option("--config", help="Config file [env: NHI_CONFIG; default: ./nhi-invoke.toml]."),
]
KeepOidcEnv = Annotated[
    bool | None,
    typer.Option(
        "--keep-oidc-env/--no-keep-oidc-env",
        help="Let the command see the CI's token-request variables (off by default).",
    ),
]
Serve = Annotated[
    bool | None,
    typer.Option(
        "--serve/--no-serve",
        help="Serve refreshing credentials on 127.0.0.1 (container-credentials / metadata "
        "protocols) for the command's lifetime instead of static variables [env: NHI_SERVE].",
    ),
]
Timeout = Annotated[
    int | None,
    typer.Option(
        help="Total seconds the token fetches and exchanges may take, retries "
        "included; then exit 69 [env: NHI_TIMEOUT; default: 60]."
    ),
]
RefreshMargin = Annotated[
    int | None,
    typer.Option(
        help="With --serve: re-issue a credential when it has less than this many "
        "seconds left [env: NHI_REFRESH_MARGIN; default: 300]."
    ),
]
ExpectDuration = Annotated[
    int | None,
    typer.Option(
        help="How long the command is expected to run, in seconds; the plan "
        "suggests --serve when it outlives the credentials [env: NHI_EXPECT_DURATION]."
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan; mint and run nothing.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable plan (with --dry-run).")]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing of our own unless it fails.")
]
Debug = Annotated[bool, typer.Option("--debug", help="Show retries, and tracebacks on errors.")]
Command = Annotated[
    list[str] | None, typer.Argument(help="The command, after '--'.", show_default=False)
]

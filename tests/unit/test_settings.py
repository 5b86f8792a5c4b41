"""Settings: flags > NHI_* variables > nhi-invoke.toml > defaults, validated, from the
options every broker declares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.ci.interface import LOCAL, CIContext
from nhi_invoke.errors import ConfigError
from nhi_invoke.settings.resolve import Settings, resolve


def flags(**given: Any) -> dict[str, Any]:
    """What the command line gave, by option name."""
    return given


def part(settings: Settings, broker: str) -> Any:
    """One broker's settings, or None when the invocation does not use it."""
    return next((c.settings for c in settings.brokers if c.declaration.name == broker), None)


ROLE = "arn:aws:iam::123456789012:role/deploy"
OTHER = "arn:aws:iam::123456789012:role/other"
ENTRY = "arn:aws:iam::123456789012:role/entry"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nhi-invoke.toml"
    path.write_text(text)
    return path


def test_flags_beat_variables_beat_the_file_beat_defaults(tmp_path: Path) -> None:
    _write(
        tmp_path,
        f'[defaults]\naws-role-arn = "{OTHER}"\naws-duration = 1000\naws-region = "eu-west-1"\n',
    )
    environ = {"NHI_AWS_DURATION": "2000"}
    settings = resolve(flags(aws_role_arn=ROLE), environ, LOCAL, str(tmp_path))
    assert part(settings, "aws").role_arn == ROLE
    assert part(settings, "aws").duration == 2000
    assert part(settings, "aws").region == "eu-west-1"
    assert part(settings, "aws").audience == "sts.amazonaws.com"


def test_the_step_table_overrides_defaults(tmp_path: Path) -> None:
    _write(
        tmp_path,
        f'[defaults]\naws-role-arn = "{OTHER}"\n[steps.deploy]\naws-role-arn = '
        f'"{ROLE}"\ntags = {{ team = "web" }}\naws-oidc-role-arn = "{ENTRY}"\n',
    )
    settings = resolve(flags(step_id="deploy"), {}, LOCAL, str(tmp_path))
    assert part(settings, "aws").role_arn == ROLE
    assert part(settings, "aws").tags == (("team", "web"),)
    assert part(settings, "aws").source_identity is True  # on by default when chained


def test_the_ci_step_selects_its_table(tmp_path: Path) -> None:
    _write(tmp_path, f'[steps.build]\naws-role-arn = "{ROLE}"\n')
    context = CIContext(provider="gitlab", step="build", job="build")
    settings = resolve(flags(), {}, context, str(tmp_path))
    assert (settings.step_id, settings.step_source) == ("build", "gitlab step")


def test_a_job_without_step_id_warns() -> None:
    context = CIContext(provider="github", job="deploy")
    settings = resolve(flags(aws_role_arn=ROLE), {}, context, "/nonexistent")
    assert settings.step_id == "deploy"
    assert "give the step an 'id:'" in settings.warnings[0]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[defaults]\naws-role = 'x'\n", "unknown key 'aws-role'"),
        ("[default]\n", "unknown table"),
        ("[defaults\n", "not valid TOML"),
        ("steps = 3\n", "[steps] is not a table"),
        ("[defaults]\ntags = ['a']\n", "tags must be a table"),
    ],
)
def test_bad_config_files_are_configuration_errors(tmp_path: Path, text: str, needle: str) -> None:
    _write(tmp_path, text)
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        resolve(flags(aws_role_arn=ROLE), {}, LOCAL, str(tmp_path))


def test_an_explicit_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(flags(aws_role_arn=ROLE, config=str(tmp_path / "x.toml")), {}, LOCAL, "/")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (flags(), "no cloud identity to issue: none of --aws-role-arn, --gcp-provider"),
        (flags(aws_role_arn="arn:aws:iam::123:role/x"), "not an IAM role ARN"),
        (flags(aws_role_arn=ROLE, aws_oidc_role_arn="role/entry"), "not an IAM role ARN"),
        (flags(aws_role_arn=ROLE, aws_duration=899), "outside 900-43200"),
        (flags(aws_role_arn=ROLE, aws_duration=43201), "outside 900-43200"),
        (flags(aws_role_arn=ROLE, aws_oidc_role_arn=ENTRY, aws_duration=3601), "one hour"),
        (flags(aws_role_arn=ROLE, aws_region="mars"), "not an AWS region"),
        (
            flags(aws_role_arn=ROLE, aws_policy_arns=("arn:aws:iam::aws:role/x",)),
            "not an IAM policy ARN",
        ),
        (
            flags(
                aws_role_arn=ROLE,
                aws_policy_arns=tuple(f"arn:aws:iam::aws:policy/p{i}" for i in range(11)),
            ),
            "more than 10",
        ),
        (flags(aws_role_arn=ROLE, tags=("novalue",)), "not KEY=VALUE"),
        (flags(aws_role_arn=ROLE, token_file="a", token_env="B"), "only one of"),
        (flags(aws_role_arn=ROLE, step_id="x" * 201), "characters long"),
        (flags(aws_role_arn=ROLE, step_id="a\nb"), "control character"),
        (flags(aws_role_arn=ROLE, aws_source_identity=True), "chained hop"),
    ],
)
def test_invalid_settings_name_the_problem(flags: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve(flags, {}, LOCAL, "/nonexistent")


def test_variable_booleans_and_numbers_are_parsed() -> None:
    with pytest.raises(ConfigError, match="not a whole number"):
        resolve(flags(aws_role_arn=ROLE), {"NHI_AWS_DURATION": "15m"}, LOCAL, "/nonexistent")
    with pytest.raises(ConfigError, match="not a boolean"):
        resolve(flags(aws_role_arn=ROLE), {"NHI_KEEP_OIDC_ENV": "maybe"}, LOCAL, "/x")


def test_session_policy_is_compacted_and_checked(tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            },
            indent=4,
        )
    )
    settings = resolve(
        flags(aws_role_arn=ROLE, aws_session_policy=str(policy)), {}, LOCAL, "/nonexistent"
    )
    assert part(settings, "aws").session_policy is not None
    assert " " not in part(settings, "aws").session_policy


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not JSON"),
        ('{"Version": "2012-10-17"}', "not an IAM policy document"),
        (json.dumps({"Statement": [{"Sid": "x" * 2100}]}), "more than the 2048"),
    ],
)
def test_bad_session_policies_are_refused(tmp_path: Path, content: str, needle: str) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        resolve(flags(aws_role_arn=ROLE, aws_session_policy=str(policy)), {}, LOCAL, "/x")


def test_sts_endpoint_is_regional_unless_overridden() -> None:
    settings = resolve(flags(aws_role_arn=ROLE, aws_region="eu-central-1"), {}, LOCAL, "/x")
    assert part(settings, "aws").sts_endpoint.url == "https://sts.eu-central-1.amazonaws.com"
    overridden = resolve(
        flags(aws_role_arn=ROLE), {"AWS_ENDPOINT_URL_STS": "http://h:1/"}, LOCAL, "/x"
    )
    assert part(overridden, "aws").sts_endpoint.url == "http://h:1"


def test_ledger_defaults_to_runner_temp_on_github() -> None:
    environ = {"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/rt", "HOME": "/h"}
    settings = resolve(flags(aws_role_arn=ROLE), environ, LOCAL, "/x")
    assert settings.ledger_path == "/rt/nhi-invoke/ledger.jsonl"
    local = resolve(flags(aws_role_arn=ROLE), {"HOME": "/h"}, LOCAL, "/x")
    assert local.ledger_path == "/h/.local/state/nhi-invoke/ledger.jsonl"


PROVIDER = "projects/42/locations/global/workloadIdentityPools/ci-pool/providers/github"
ACCOUNT = "deployer@my-project.iam.gserviceaccount.com"


def test_gcp_settings_have_defaults_and_endpoints() -> None:
    environ = {"NHI_GCP_STS_ENDPOINT": "http://127.0.0.1:9/"}
    settings = resolve(flags(gcp_provider=PROVIDER), environ, LOCAL, "/x")
    assert part(settings, "aws") is None
    assert part(settings, "gcp") is not None
    assert part(settings, "gcp").audience == f"https://iam.googleapis.com/{PROVIDER}"
    assert part(settings, "gcp").lifetime == 600
    assert part(settings, "gcp").sts_endpoint == "http://127.0.0.1:9"
    assert part(settings, "gcp").iamcredentials_endpoint == "https://iamcredentials.googleapis.com"


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (
            flags(gcp_provider="projects/x/locations/global/workloadIdentityPools/p/providers/q"),
            "workload identity provider",
        ),
        (
            flags(gcp_service_account="a@b.iam.gserviceaccount.com"),
            "but --gcp-provider is not",
        ),
        (
            flags(gcp_provider=PROVIDER.replace("/ci-pool/", "/ci/")),
            "the pool id 'ci' has 2 characters, not 4-32",
        ),
        (
            flags(gcp_provider=PROVIDER.replace("projects/42/", "projects/my-project/")),
            "the project 'my-project' is not a project number",
        ),
        (
            flags(gcp_provider=PROVIDER.replace("/providers/github", "/providers/GitHub")),
            "the provider id 'GitHub' has characters other than lowercase letters",
        ),
        (
            flags(gcp_provider=PROVIDER.replace("/ci-pool/", "/gcp-pool/")),
            "starts with 'gcp-', which Google reserves",
        ),
        (
            flags(gcp_provider=PROVIDER.replace("locations/global", "locations/us")),
            "workload identity pools are 'global'",
        ),
        (flags(gcp_provider=PROVIDER, gcp_scopes=("cloud-platform",)), "OAuth scope URL"),
        (
            flags(gcp_provider=PROVIDER, gcp_service_account=ACCOUNT, gcp_lifetime=43201),
            "outside 1-43200",
        ),
        (flags(gcp_provider=PROVIDER, gcp_project="UPPER"), "not a project id"),
    ],
)
def test_invalid_gcp_settings_name_the_problem(flags: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve(flags, {}, LOCAL, "/nonexistent")


def test_gcp_settings_come_from_the_config_file(tmp_path: Path) -> None:
    _write(
        tmp_path,
        f'[defaults]\ngcp-provider = "{PROVIDER}"\n'
        'gcp-scope = ["https://www.googleapis.com/auth/a"]\ngcp-lifetime = 300\n',
    )
    settings = resolve(flags(), {}, LOCAL, str(tmp_path))
    assert part(settings, "gcp") is not None
    assert part(settings, "gcp").scopes == ("https://www.googleapis.com/auth/a",)
    assert part(settings, "gcp").lifetime == 300


def test_a_ca_bundle_comes_from_the_flag_or_the_variable_never_the_config_file(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n")
    # Whom to trust is the pipeline's choice: a repository could trust its own interceptor.
    _write(tmp_path, f'[defaults]\naws-role-arn = "{ROLE}"\nca-bundle = "{bundle}"\n')
    with pytest.raises(ConfigError, match="ca-bundle may not be set in the config file"):
        resolve(flags(), {}, LOCAL, str(tmp_path))
    _write(tmp_path, f'[defaults]\naws-role-arn = "{ROLE}"\n')
    from_variable = resolve(flags(), {"NHI_CA_BUNDLE": str(bundle)}, LOCAL, str(tmp_path))
    assert from_variable.ca_bundle is not None
    assert from_variable.ca_bundle.origin == "NHI_CA_BUNDLE"
    from_flag = resolve(flags(ca_bundle=str(bundle)), {}, LOCAL, str(tmp_path)).ca_bundle
    assert from_flag is not None
    assert from_flag.origin == "--ca-bundle"
    assert resolve(flags(aws_role_arn=ROLE), {}, LOCAL, "/nonexistent").ca_bundle is None

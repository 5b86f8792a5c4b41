"""The option registry: one declaration per option serves the flag, the variables, the config
file and the help; declarations load without any broker's runtime or SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nhi_invoke import settings
from nhi_invoke.ci.interface import LOCAL
from nhi_invoke.cli.run import help_text
from nhi_invoke.errors import ConfigError, UsageError
from nhi_invoke.settings.option import Kind, Option, OptionValues
from nhi_invoke.settings.resolve import resolve

ROLE = "arn:aws:iam::123456789012:role/deploy"
WITH_FAKE = {"NHI_BROKER_MODULES": "tests.fake_broker.declaration"}


def test_every_option_has_its_own_name_flag_key_and_variables() -> None:
    options = settings.options(WITH_FAKE)
    for attribute in ("name", "flag", "key"):
        values = [getattr(o, attribute) for o in options]
        assert len(values) == len(set(values)), attribute
    variables = [v for o in options for v in o.env]
    assert len(variables) == len(set(variables))
    assert all(o.env[0].startswith("NHI_") for o in options if o.env)
    assert {o.group for o in options} == {"invocation", "aws", "gcp", "azure", "vault", "fake"}


def test_the_help_names_the_variables_the_config_key_and_the_default() -> None:
    region = settings.by_name({})["aws_region"]
    assert help_text(region).endswith(
        "\n[env: NHI_AWS_REGION, AWS_REGION; config: aws-region; default: us-east-1]"
    )
    step = settings.by_name({})["step_id"]
    assert "config: not allowed; default: from the CI" in help_text(step)


@pytest.mark.parametrize(
    ("environ", "region"),
    [
        ({"AWS_REGION": "eu-west-2"}, "eu-west-2"),
        ({"AWS_REGION": "eu-west-2", "NHI_AWS_REGION": "eu-west-3"}, "eu-west-3"),
        ({"AWS_REGION": ""}, "us-east-1"),
    ],
)
def test_variables_are_read_in_order_and_empty_ones_are_unset(
    environ: dict[str, str], region: str
) -> None:
    resolved = resolve({"aws_role_arn": ROLE}, environ, LOCAL, "/nonexistent")
    (choice,) = resolved.brokers
    assert choice.settings.region == region


def test_an_option_may_refuse_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "nhi-invoke.toml").write_text('[defaults]\nfake-audience = "elsewhere"\n')
    with pytest.raises(ConfigError, match="fake-audience may not be set in the config file"):
        resolve({"fake_url": "http://127.0.0.1:9"}, WITH_FAKE, LOCAL, str(tmp_path))
    # From its variable it is fine.
    resolved = resolve(
        {"fake_url": "http://127.0.0.1:9"},
        WITH_FAKE | {"NHI_FAKE_AUDIENCE": "elsewhere"},
        LOCAL,
        str(tmp_path / "none"),
    )
    assert resolved.brokers[0].settings.audience == "elsewhere"


def test_a_list_from_a_variable_is_comma_or_newline_separated() -> None:
    option = Option(name="scopes", help="", group="x", kind=Kind.LIST, env=("NHI_SCOPES",))
    values = OptionValues({"scopes": option}, {}, {"NHI_SCOPES": "a, b\nc"}, {}, "f.toml")
    assert values.get("scopes") == ("a", "b", "c")


def test_an_unknown_keyword_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unknown option .aws_role."):
        resolve({"aws_role": ROLE}, {}, LOCAL, "/nonexistent")


def test_an_unimportable_broker_module_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="cannot be imported"):
        settings.options({"NHI_BROKER_MODULES": "tests.no_such_broker"})


def test_declarations_import_no_runtime_and_no_sdk() -> None:
    probe = (
        "import sys; from nhi_invoke import settings; "
        "from nhi_invoke.settings.resolve import resolve; "
        "from nhi_invoke.ci.interface import LOCAL; "
        "settings.options({}); "
        "resolve({'aws_role_arn': 'arn:aws:iam::123456789012:role/r', 'gcp_provider': "
        "'projects/1/locations/global/workloadIdentityPools/pool/providers/prov'}, {}, LOCAL, "
        "'/nonexistent'); "
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "nhi_invoke.brokers.aws.declaration" in loaded
    runtimes = {m for m in loaded if m.endswith((".broker", ".sts_query", ".transport"))}
    assert runtimes == set()
    assert not {m.split(".")[0] for m in loaded} & {"botocore", "boto3", "google", "typer"}


def test_sandbox_cloud_takes_a_list_or_all_of_the_emulated_brokers() -> None:
    from nhi_invoke.cli.sandbox import _brokers  # noqa: PLC0415

    assert _brokers("all") == ("aws", "gcp", "azure", "vault")
    assert _brokers("both") == ("aws", "gcp")  # its meaning from when there were two
    assert _brokers("gcp, aws") == ("gcp", "aws")
    assert _brokers("azure") == ("azure",)
    with pytest.raises(ConfigError, match="not one of aws, gcp, azure"):
        _brokers("aws,nope")

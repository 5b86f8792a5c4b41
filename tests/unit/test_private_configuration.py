"""The command's tools get configuration of the invocation's own: the runner's settings that
say how to reach the cloud, never who to be."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

from nhi_invoke.brokers.aws import shared_files
from nhi_invoke.brokers.gcp import gcloud_config
from nhi_invoke.invocation.private_folder import PrivateFolder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_aws_files_keep_settings_and_drop_every_credential(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(
        "[default]\n"
        "region = eu-west-2\n"
        "retry_mode = adaptive\n"
        "services = internal\n"
        "s3 =\n  max_concurrent_requests = 20\n"
        "aws_access_key_id = AKIAEXAMPLE\n"
        "aws_secret_access_key = secret\n"
        "credential_process = /usr/bin/get-creds\n"
        "role_arn = arn:aws:iam::123456789012:role/runner\n"
        "source_profile = base\n"
        "sso_start_url = https://sso.example\n"
        "web_identity_token_file = /token\n"
        "[profile other]\nregion = us-east-1\n"
        "[services internal]\nsts =\n  endpoint_url = https://sts.internal\n"
        "[sso-session corp]\nsso_region = us-east-1\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    variables = shared_files.write(out, {"HOME": str(home)})
    credentials = Path(variables["AWS_SHARED_CREDENTIALS_FILE"])
    config = Path(variables["AWS_CONFIG_FILE"])
    assert credentials.read_text() == ""
    assert _mode(credentials) == _mode(config) == 0o600
    parsed = configparser.RawConfigParser()
    parsed.read(config)
    assert parsed.sections() == ["default", "services internal"]
    assert dict(parsed.items("default")) == {
        "region": "eu-west-2",
        "retry_mode": "adaptive",
        "services": "internal",
        "s3": "\nmax_concurrent_requests = 20",
    }
    assert "AKIAEXAMPLE" not in config.read_text()
    assert "get-creds" not in config.read_text()


def test_the_aws_config_named_by_aws_config_file_is_the_one_read(tmp_path: Path) -> None:
    named = tmp_path / "named"
    named.write_text("[default]\noutput = json\n")
    out = tmp_path / "out"
    out.mkdir()
    variables = shared_files.write(out, {"AWS_CONFIG_FILE": str(named), "HOME": "/nowhere"})
    assert "output = json" in Path(variables["AWS_CONFIG_FILE"]).read_text()


def test_without_a_runner_config_the_aws_files_are_empty(tmp_path: Path) -> None:
    variables = shared_files.write(tmp_path, {"HOME": str(tmp_path / "none")})
    assert {Path(v).read_text() for v in variables.values()} == {""}


def test_gcloud_gets_a_configuration_without_account_project_or_keys(tmp_path: Path) -> None:
    runner = tmp_path / "gcloud"
    (runner / "configurations").mkdir(parents=True)
    (runner / "active_config").write_text("work\n")
    (runner / "configurations" / "config_work").write_text(
        "[core]\naccount = runner@corp.iam.gserviceaccount.com\nproject = runner-project\n"
        "custom_ca_certs_file = /etc/corp-ca.pem\nlog_http = true\n"
        "[proxy]\ntype = http\naddress = proxy.corp\nport = 3128\n"
        "[compute]\nregion = europe-west1\n"
        "[auth]\nimpersonate_service_account = admin@corp.iam.gserviceaccount.com\n"
        "[api_endpoint_overrides]\nstorage = https://storage.corp/\n"
    )
    (runner / "credentials.db").write_text("keys")
    (runner / "application_default_credentials.json").write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    variables = gcloud_config.write(out, {"CLOUDSDK_CONFIG": str(runner)})
    assert variables == {"CLOUDSDK_CONFIG": str(out)}
    assert (out / "active_config").read_text() == "default"
    config = out / "configurations" / "config_default"
    parsed = configparser.RawConfigParser()
    parsed.read(config)
    assert {s: dict(parsed.items(s)) for s in parsed.sections()} == {
        "core": {"custom_ca_certs_file": "/etc/corp-ca.pem"},
        "proxy": {"type": "http", "address": "proxy.corp", "port": "3128"},
        "compute": {"region": "europe-west1"},
        "api_endpoint_overrides": {"storage": "https://storage.corp/"},
    }
    assert sorted(p.name for p in out.iterdir()) == ["active_config", "configurations"]
    assert _mode(config) == 0o600
    assert not (out / "gce").exists()  # under --serve, gcloud must look for the server


def test_gcloud_reads_the_configuration_the_runner_names(tmp_path: Path) -> None:
    runner = tmp_path / "home" / ".config" / "gcloud"
    (runner / "configurations").mkdir(parents=True)
    (runner / "configurations" / "config_ci").write_text("[compute]\nzone = europe-west1-b\n")
    out = tmp_path / "out"
    out.mkdir()
    environ = {"HOME": str(tmp_path / "home"), "CLOUDSDK_ACTIVE_CONFIG_NAME": "ci"}
    gcloud_config.write(out, environ)
    assert "zone = europe-west1-b" in (out / "configurations" / "config_default").read_text()


def test_the_private_folder_is_private_and_removed_with_everything_in_it(
    tmp_path: Path,
) -> None:
    folder = PrivateFolder({"RUNNER_TEMP": str(tmp_path)}, "inv123")
    sub = folder.folder("gcp")
    (sub / "access_tokens.db").write_text("cached")
    assert folder.path.parent == tmp_path
    assert folder.path.name.startswith("nhi-invoke-inv123-")
    assert _mode(folder.path) == _mode(sub) == 0o700
    folder.remove()
    assert not folder.path.exists()
    folder.remove()  # harmless twice

"""`--dry-run --json` names the STS host botocore calls, for every region in botocore's data,
with and without the FIPS and dual-stack variables; a variant botocore refuses is refused
(exit 78) before anything is asked of anyone."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.brokers.aws import sts_endpoints
from tests.botocore_sts import VARIANTS, Resolver, botocore_resolver
from tests.e2e.runs import run_nhi

pytestmark = pytest.mark.e2e
ROLE = "arn:aws:iam::123456789012:role/deploy"
CASES = Path(__file__).with_name("dry_run_cases.py")


def _dry_run(region: str) -> list[str]:
    return ["run", "--dry-run", "--json", "--aws-role-arn", ROLE, "--aws-region", region]


@pytest.fixture
def botocore_sts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Resolver:
    return botocore_resolver(monkeypatch, tmp_path)


def test_every_region_and_variant_names_botocores_host(
    base_env: dict[str, str], botocore_sts: Resolver
) -> None:
    cases = [(region, variant) for region in sts_endpoints.regions() for variant in VARIANTS]
    payload = json.dumps([{"args": [*_dry_run(r), "--", "true"], "environ": v} for r, v in cases])
    done = subprocess.run(
        [sys.executable, str(CASES)],
        input=payload,
        env=base_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    hosts = refusals = 0
    for (region, variant), result in zip(cases, results, strict=True):
        expected = botocore_sts(variant, region)
        if isinstance(expected, str):
            assert result["code"] == 0, (region, variant, result["stderr"])
            plan = json.loads(result["stdout"])
            assert plan["aws"]["sts_host"] == urllib.parse.urlsplit(expected).hostname
            assert plan["aws"]["sts_endpoint"] == expected
            hosts += 1
        else:
            assert result["code"] == 78, (region, variant, result)
            assert "botocore resolves no" in result["stderr"]
            refusals += 1
    assert hosts >= 4 * 50
    assert refusals > 0


@pytest.mark.parametrize(
    ("region", "variant", "host"),
    [
        ("us-east-1", {}, "sts.us-east-1.amazonaws.com"),
        ("us-east-1", {"AWS_USE_FIPS_ENDPOINT": "true"}, "sts-fips.us-east-1.amazonaws.com"),
        ("us-gov-west-1", {"AWS_USE_FIPS_ENDPOINT": "true"}, "sts.us-gov-west-1.amazonaws.com"),
        ("eu-west-1", {"AWS_USE_DUALSTACK_ENDPOINT": "true"}, "sts.eu-west-1.api.aws"),
        ("us-iso-east-1", {}, "sts.us-iso-east-1.c2s.ic.gov"),
        ("us-isob-east-1", {}, "sts.us-isob-east-1.sc2s.sgov.gov"),
        ("eu-isoe-west-1", {}, "sts.eu-isoe-west-1.cloud.adc-e.uk"),
        ("cn-north-1", {}, "sts.cn-north-1.amazonaws.com.cn"),
        ("eu-west-1", {"AWS_STS_REGIONAL_ENDPOINTS": "legacy"}, "sts.amazonaws.com"),
    ],
)
def test_the_installed_command_names_the_host_and_why(
    base_env: dict[str, str],
    botocore_sts: Resolver,
    region: str,
    variant: dict[str, str],
    host: str,
) -> None:
    result = run_nhi([*_dry_run(region), "--", "true"], base_env | variant)
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)["aws"]
    assert plan["sts_host"] == host
    assert botocore_sts(variant, region) == f"https://{host}"
    table = run_nhi(
        [*_dry_run(region)[:2], *_dry_run(region)[3:], "--", "true"], base_env | variant
    )
    assert f"https://{host} ({region}; {plan['sts_endpoint_source']})" in table.stdout


def test_a_variant_botocore_refuses_is_refused_with_the_variables_named(
    base_env: dict[str, str],
) -> None:
    result = run_nhi(
        [*_dry_run("eu-isoe-west-1"), "--", "true"],
        base_env | {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
    )
    assert result.code == 78
    assert (
        "AWS_USE_DUALSTACK_ENDPOINT: botocore resolves no dual-stack STS endpoint for "
        "eu-isoe-west-1" in result.stderr
    )


def test_endpoint_settings_are_read_from_the_environment_not_from_a_profile(
    base_env: dict[str, str], home: Path
) -> None:
    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text(
        "[default]\nuse_fips_endpoint = true\nsts_regional_endpoints = legacy\n"
    )
    result = run_nhi([*_dry_run("eu-west-1"), "--", "true"], base_env)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["aws"]["sts_host"] == "sts.eu-west-1.amazonaws.com"

"""nhi-invoke calls the STS endpoint botocore calls: every region in botocore's data, with
each endpoint variable, compared with botocore's own resolution (a real client, stopped
before it sends)."""

from __future__ import annotations

import itertools
from pathlib import Path

import botocore.exceptions
import botocore.regions
import pytest

from nhi_invoke.brokers.aws import sts_endpoints
from nhi_invoke.errors import ConfigError
from tests.botocore_sts import VARIANTS, Resolver, botocore_resolver


@pytest.fixture
def botocore_sts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Resolver:
    return botocore_resolver(monkeypatch, tmp_path)


def _ours(environ: dict[str, str], region: str) -> str | None:
    try:
        return sts_endpoints.resolve(environ, region).url
    except ConfigError:
        return None


REGIONAL = [
    {},
    {"AWS_STS_REGIONAL_ENDPOINTS": "regional"},
    {"AWS_STS_REGIONAL_ENDPOINTS": "legacy"},
]


def test_every_region_and_variant_resolves_as_botocore_resolves(botocore_sts: Resolver) -> None:
    regions = sts_endpoints.regions()
    assert {"us-east-1", "us-gov-west-1", "cn-north-1", "us-iso-east-1", "us-isob-east-1"} <= set(
        regions
    )
    assert {"eu-isoe-west-1", "us-isof-south-1", "eusc-de-east-1", "aws-global"} <= set(regions)
    compared = refused = 0
    for region, variant, regional in itertools.product(regions, VARIANTS, REGIONAL):
        environ = {**variant, **regional}
        theirs = botocore_sts(environ, region)
        ours = _ours(environ, region)
        if isinstance(theirs, str):
            assert ours == theirs, (region, environ)
            compared += 1
        else:  # botocore refuses: so do we (exit 78, naming the variables)
            assert ours is None, (region, environ, theirs)
            refused += 1
    assert compared > 500
    assert refused > 0  # e.g. dual-stack in eu-isoe-west-1: botocore's data has none


@pytest.mark.parametrize(
    "environ",
    [
        {"AWS_ENDPOINT_URL_STS": "https://sts.internal.example"},
        {"AWS_ENDPOINT_URL": "https://all.internal.example/base/"},
        {"AWS_ENDPOINT_URL": "https://all.example", "AWS_ENDPOINT_URL_STS": "https://sts.example"},
        {"AWS_ENDPOINT_URL": "https://all.example", "AWS_ENDPOINT_URL_STS": ""},
        {"AWS_ENDPOINT_URL_STS": "https://sts.example", "AWS_USE_FIPS_ENDPOINT": "true"},
        {"AWS_ENDPOINT_URL_STS": "https://sts.example", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
        {"AWS_ENDPOINT_URL_STS": "https://s.example", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "1"},
        {"AWS_ENDPOINT_URL_STS": "https://s.ex", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "True"},
        {"AWS_USE_FIPS_ENDPOINT": "1"},
        {"AWS_STS_REGIONAL_ENDPOINTS": ""},
    ],
)
def test_endpoint_variables_are_read_as_botocore_reads_them(
    botocore_sts: Resolver, environ: dict[str, str]
) -> None:
    for region in ("us-east-1", "us-gov-west-1", "cn-northwest-1"):
        assert _ours(environ, region) == botocore_sts(environ, region), (region, environ)


def test_an_invalid_regional_setting_is_refused_as_botocore_refuses_it(
    botocore_sts: Resolver,
) -> None:
    environ = {"AWS_STS_REGIONAL_ENDPOINTS": "Legacy"}
    refused = botocore.exceptions.InvalidSTSRegionalEndpointsConfigError
    assert botocore_sts(environ, "us-east-1") is refused
    with pytest.raises(ConfigError, match="AWS_STS_REGIONAL_ENDPOINTS='Legacy' is neither"):
        sts_endpoints.resolve(environ, "us-east-1")


def test_a_refused_variant_names_the_variables_and_the_region() -> None:
    with pytest.raises(ConfigError) as refused:
        sts_endpoints.resolve({"AWS_USE_DUALSTACK_ENDPOINT": "true"}, "eu-isoe-west-1")
    assert "AWS_USE_DUALSTACK_ENDPOINT" in str(refused.value)
    assert "eu-isoe-west-1" in str(refused.value)


def test_the_partitions_skipped_for_dual_stack_are_botocores() -> None:
    skipped = botocore.regions.EndpointResolver._UNSUPPORTED_DUALSTACK_PARTITIONS
    assert tuple(skipped) == sts_endpoints.LEGACY_DUALSTACK_SKIPPED


def test_the_data_is_read_from_the_installed_botocore() -> None:
    import botocore  # noqa: PLC0415

    path = sts_endpoints._botocore_data("partitions.json")
    assert path.startswith(botocore.__path__[0])

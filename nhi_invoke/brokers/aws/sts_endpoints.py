"""The STS endpoint botocore would call in the same environment, found without importing
botocore (~150 ms on the single-hop path, which never needs it).

The same data botocore uses, read from the installed botocore (located with
`importlib.util.find_spec`, which does not import it): its partition data
(`data/partitions.json`, 7 KB: each partition's DNS suffixes, FIPS and dual-stack support and
regions) under the rules of botocore's STS endpoint rule set (`data/sts/…/endpoint-rule-set`):
FIPS (`sts-fips.<region>`, except in GovCloud), dual-stack (`<dualStackDnsSuffix>`), the
global endpoint for `aws-global` and, with `AWS_STS_REGIONAL_ENDPOINTS=legacy`, for the
legacy regions. botocore also refuses a FIPS or dual-stack variant its older endpoint data
(`data/endpoints.json`, 1.2 MB) does not model; that file is read only when a variant is
asked for. `tests/unit/test_sts_endpoints.py` compares every region botocore knows, with each
variable, against botocore's own resolution, so a botocore whose rules change fails the test.

The variables and their parsing are botocore's: `AWS_ENDPOINT_URL_STS`, else
`AWS_ENDPOINT_URL` (unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true; a configured URL
wins over every variant), `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT` (true only
when "true" in any case), `AWS_STS_REGIONAL_ENDPOINTS` (`regional`, the default, or `legacy`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

from nhi_invoke.errors import ConfigError
from nhi_invoke.settings.validation import endpoint as endpoint_url

FIPS_VARIABLE = "AWS_USE_FIPS_ENDPOINT"
DUAL_STACK_VARIABLE = "AWS_USE_DUALSTACK_ENDPOINT"
REGIONAL_VARIABLE = "AWS_STS_REGIONAL_ENDPOINTS"
URL_VARIABLES = ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL")
IGNORE_URLS_VARIABLE = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
GLOBAL_ENDPOINT = "https://sts.amazonaws.com"
# The rule set's UseGlobalEndpoint branch (botocore's LEGACY_GLOBAL_STS_REGIONS).
LEGACY_GLOBAL_REGIONS = frozenset(
    {
        "ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "aws-global",
        "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3",
        "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    }
)  # fmt: skip
# botocore's EndpointResolver._UNSUPPORTED_DUALSTACK_PARTITIONS: its older data is skipped for
# these (code, not data; the unit test checks it against botocore's).
LEGACY_DUALSTACK_SKIPPED = ("aws-iso", "aws-iso-b")


# Typed named tuples: immutable, and a quarter of a frozen dataclass's cost to define.
class Partition(NamedTuple):
    name: str
    dns_suffix: str
    dual_stack_dns_suffix: str
    supports_fips: bool
    supports_dual_stack: bool


class StsEndpoint(NamedTuple):
    """Where STS calls go, and what decided it (for --dry-run)."""

    url: str
    source: str


def _botocore_data(name: str) -> str:
    spec = importlib.util.find_spec("botocore")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = os.path.join(location, "data", name)
        if os.path.exists(path):
            return path
    raise ConfigError(
        f"botocore's endpoint data ({name}) is not installed",
        "reinstall nhi-invoke with its dependencies (pip install --force-reinstall nhi-invoke)",
    )


@cache
def _partitions() -> tuple[tuple[Partition, frozenset[str], str], ...]:
    with open(_botocore_data("partitions.json"), encoding="utf-8") as handle:
        data = json.load(handle)
    found = []
    for entry in data["partitions"]:
        outputs = entry["outputs"]
        partition = Partition(
            name=outputs["name"],
            dns_suffix=outputs["dnsSuffix"],
            dual_stack_dns_suffix=outputs["dualStackDnsSuffix"],
            supports_fips=bool(outputs["supportsFIPS"]),
            supports_dual_stack=bool(outputs["supportsDualStack"]),
        )
        found.append((partition, frozenset(entry["regions"]), entry["regionRegex"]))
    return tuple(found)


def partition(region: str) -> Partition:
    """The rule set's `aws.partition`: the partition listing the region, else the first whose
    pattern matches it, else `aws`."""
    partitions = _partitions()
    for found, regions, _ in partitions:
        if region in regions:
            return found
    for found, _, pattern in partitions:  # a region the data does not list yet
        if re.match(pattern, region):
            return found
    return next(p for p, _, _ in partitions if p.name == "aws")


def regions() -> tuple[str, ...]:
    """Every region botocore's partition data lists."""
    return tuple(sorted(region for _, listed, _ in _partitions() for region in listed))


def _true(environ: Mapping[str, str], name: str) -> bool:
    # botocore's ensure_boolean: only "true", in any case, is true.
    return environ.get(name, "").lower() == "true"


def resolve(environ: Mapping[str, str], region: str) -> StsEndpoint:
    """The STS endpoint botocore resolves for `region` in `environ`; exit 78 where it refuses."""
    if not _true(environ, IGNORE_URLS_VARIABLE):
        for name in URL_VARIABLES:
            if environ.get(name):
                return StsEndpoint(endpoint_url(name, environ[name]), name)
    fips = _true(environ, FIPS_VARIABLE)
    dual_stack = _true(environ, DUAL_STACK_VARIABLE)
    regional = environ.get(REGIONAL_VARIABLE) or "regional"
    if regional not in ("regional", "legacy"):
        raise ConfigError(
            f"{REGIONAL_VARIABLE}={regional[:40]!r} is neither 'regional' nor 'legacy'",
            f"unset {REGIONAL_VARIABLE}, or set it to regional",
        )
    if not (fips or dual_stack):
        if regional == "legacy" and region in LEGACY_GLOBAL_REGIONS:
            return StsEndpoint(GLOBAL_ENDPOINT, f"the global endpoint ({REGIONAL_VARIABLE})")
        if region == "aws-global":
            return StsEndpoint(GLOBAL_ENDPOINT, "the global endpoint (aws-global)")
        return StsEndpoint(
            f"https://sts.{region}.{partition(region).dns_suffix}", "the regional endpoint"
        )
    return _variant(region, fips=fips, dual_stack=dual_stack)


def _variant(region: str, *, fips: bool, dual_stack: bool) -> StsEndpoint:
    found = partition(region)
    wanted = " and ".join(name for name, on in (("FIPS", fips), ("dual-stack", dual_stack)) if on)
    variables = " and ".join(
        name for name, on in ((FIPS_VARIABLE, fips), (DUAL_STACK_VARIABLE, dual_stack)) if on
    )
    supported = (not fips or found.supports_fips) and (not dual_stack or found.supports_dual_stack)
    refused = None if supported else f"the {found.name} partition has no {wanted} endpoints"
    refused = refused or _legacy_refusal(region, fips=fips, dual_stack=dual_stack)
    if refused is not None:
        raise ConfigError(
            f"{variables}: botocore resolves no {wanted} STS endpoint for {region}: {refused}",
            f"unset {variables} for this region, or set AWS_ENDPOINT_URL_STS",
        )
    source = f"the {wanted} endpoint ({variables})"
    if fips and dual_stack:
        return StsEndpoint(f"https://sts-fips.{region}.{found.dual_stack_dns_suffix}", source)
    if dual_stack:
        return StsEndpoint(f"https://sts.{region}.{found.dual_stack_dns_suffix}", source)
    if found.name == "aws-us-gov":  # GovCloud's regional endpoints are FIPS endpoints
        return StsEndpoint(f"https://sts.{region}.amazonaws.com", source)
    return StsEndpoint(f"https://sts-fips.{region}.{found.dns_suffix}", source)


@cache
def _legacy_data() -> dict[str, Any]:
    with open(_botocore_data("endpoints.json"), encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _legacy_refusal(region: str, *, fips: bool, dual_stack: bool) -> str | None:
    """Why botocore's older endpoint data refuses this variant (it checks it when a client
    is created), or None: the partition that claims the region models no such variant."""
    tags = {name for name, on in (("dualstack", dual_stack), ("fips", fips)) if on}
    for entry in _legacy_data()["partitions"]:
        if dual_stack and entry["partition"] in LEGACY_DUALSTACK_SKIPPED:
            continue
        service = entry["services"].get("sts", {"endpoints": {}})
        pattern = entry.get("regionRegex")
        claims = (
            region in service.get("endpoints", {})
            or region in entry["regions"]
            or bool(pattern and re.match(pattern, region))
        )
        if not claims:
            continue
        scopes = (
            service.get("endpoints", {}).get(region, {}),
            service.get("defaults", {}),
            entry.get("defaults", {}),
        )
        if any(set(v["tags"]) == tags for s in scopes for v in s.get("variants", [])):
            return None
        return f"its endpoint data models no such endpoint in {entry['partition']}"
    return None

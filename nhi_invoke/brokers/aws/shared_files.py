"""The AWS SDKs' shared files for the command: no credentials file, and a config file holding
only the runner's non-credential settings.

The SDKs' default chains read `~/.aws/credentials` (and credentials in `~/.aws/config`:
keys, `role_arn`, `credential_process`, SSO…) before the container-credentials endpoint that
--serve offers, and a command that names a profile reads them whatever the mode. So both
modes point `AWS_SHARED_CREDENTIALS_FILE` at an empty file and `AWS_CONFIG_FILE` at a copy
of the runner's config that keeps, from its `[default]` profile (the child has no
`AWS_PROFILE`), only the settings below and the `[services …]` sections they name: a region
default, retries, endpoints, CA bundle, CLI output. Never a credential: an allow-list, so a
credential setting the SDKs add later stays out too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from nhi_invoke.diagnostics import Log

log = Log("aws")
CREDENTIALS_VARIABLE = "AWS_SHARED_CREDENTIALS_FILE"
CONFIG_VARIABLE = "AWS_CONFIG_FILE"
VARIABLES = (CREDENTIALS_VARIABLE, CONFIG_VARIABLE)
# Settings of a profile that configure how the SDKs and the CLI behave, never who they are.
KEPT_SETTINGS = frozenset(
    {
        "region", "output", "ca_bundle", "retry_mode", "max_attempts", "defaults_mode",
        "parameter_validation", "tcp_keepalive", "connect_timeout", "read_timeout",
        "use_fips_endpoint", "use_dualstack_endpoint", "sts_regional_endpoints",
        "endpoint_url", "ignore_configured_endpoint_urls", "services",
        "disable_request_compression", "request_min_compression_size_bytes",
        "request_checksum_calculation", "response_checksum_validation",
        "account_id_endpoint_mode", "auth_scheme_preference", "sigv4a_signing_region_set",
        "s3", "s3_use_arn_region", "s3_disable_multiregion_access_points",
        "cli_pager", "cli_timestamp_format", "cli_binary_format", "cli_follow_urlparam",
        "cli_auto_prompt", "cli_history", "api_versions",
    }
)  # fmt: skip


def write(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Write the two files into `folder`; the variables that point the SDKs at them."""
    credentials = folder / "credentials"
    config = folder / "config"
    _private(credentials, "")
    _private(config, _kept_config(_runner_config(environ)))
    return {CREDENTIALS_VARIABLE: str(credentials), CONFIG_VARIABLE: str(config)}


def _private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _runner_config(environ: Mapping[str, str]) -> Path | None:
    named = environ.get(CONFIG_VARIABLE)
    if named:
        return Path(os.path.expanduser(named))
    home = environ.get("HOME")
    return Path(home, ".aws", "config") if home else None


def _kept_config(path: Path | None) -> str:
    """The runner's config reduced to its `[default]` profile's kept settings."""
    if path is None or not path.is_file():
        return ""
    import configparser  # noqa: PLC0415 - only when the runner has a config file

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        log.debug("ignoring the unreadable %s: %s", path, type(exc).__name__)
        return ""
    if not parser.has_section("default"):
        return ""
    kept = configparser.RawConfigParser(interpolation=None)
    kept.add_section("default")
    for key, value in parser.items("default"):
        if key in KEPT_SETTINGS:
            kept.set("default", key, value)
    services = parser.get("default", "services", fallback=None)
    section = f"services {services}" if services else None
    if section and parser.has_section(section):
        kept.add_section(section)
        for key, value in parser.items(section):
            kept.set(section, key, value)
    import io  # noqa: PLC0415

    text = io.StringIO()
    kept.write(text)
    return text.getvalue()

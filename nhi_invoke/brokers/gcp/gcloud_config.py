"""gcloud's configuration folder for the command: its own, created for the invocation.

gcloud keeps its logged-in accounts, their keys (`credentials.db`), the application default
credentials file that google-auth also reads, the access tokens it fetched
(`access_tokens.db`) and a copy of every command's output, printed tokens included (`logs/`),
in its configuration folder. The runner's folder would give the command the runner's account
and keep the step's token after the step. So the command's gcloud gets `CLOUDSDK_CONFIG`
pointing at a folder of the invocation's (private, removed when it ends), holding one
configuration made of the runner's active configuration's non-identity settings (proxy, CA,
API endpoints, default compute region and zone, prompts): no account, no project (the step's
come from --gcp-project or the served identity), no `gce` cache (under --serve gcloud must
find the metadata server).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from nhi_invoke.diagnostics import Log

log = Log("gcp")
CONFIG_VARIABLE = "CLOUDSDK_CONFIG"
ACTIVE_CONFIG_VARIABLE = "CLOUDSDK_ACTIVE_CONFIG_NAME"
# Properties that configure how gcloud reaches Google, never who it is; a whole section for
# proxy and api_endpoint_overrides.
KEPT_SECTIONS = frozenset({"proxy", "api_endpoint_overrides"})
KEPT_PROPERTIES = {
    "core": frozenset(
        {
            "custom_ca_certs_file", "disable_usage_reporting", "disable_prompts",
            "disable_color", "user_output_enabled", "verbosity", "max_log_days",
        }
    ),
    "compute": frozenset({"region", "zone"}),
    "component_manager": frozenset({"disable_update_check"}),
    "survey": frozenset({"disable_prompts"}),
}  # fmt: skip


def write(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Make `folder` gcloud's configuration folder; the variable that points gcloud at it."""
    configurations = folder / "configurations"
    configurations.mkdir(mode=0o700)
    _private(folder / "active_config", "default")
    _private(configurations / "config_default", _kept(_runner_configuration(environ)))
    return {CONFIG_VARIABLE: str(folder)}


def _private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _runner_configuration(environ: Mapping[str, str]) -> Path | None:
    """The runner's active gcloud configuration file, if it has one."""
    folder = environ.get(CONFIG_VARIABLE)
    if not folder:
        home = environ.get("HOME")
        if not home:
            return None
        folder = os.path.join(home, ".config", "gcloud")
    folder = os.path.expanduser(folder)
    name = environ.get(ACTIVE_CONFIG_VARIABLE)
    if not name:
        try:
            with open(os.path.join(folder, "active_config"), encoding="utf-8") as handle:
                name = handle.read().strip()
        except OSError:
            name = ""
    path = Path(folder, "configurations", f"config_{name or 'default'}")
    return path if path.is_file() else None


def _kept(path: Path | None) -> str:
    if path is None:
        return ""
    import configparser  # noqa: PLC0415 - only when the runner has a gcloud configuration
    import io  # noqa: PLC0415

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        log.debug("ignoring the unreadable %s: %s", path, type(exc).__name__)
        return ""
    kept = configparser.RawConfigParser(interpolation=None)
    for section in parser.sections():
        keys = [
            key
            for key, _ in parser.items(section)
            if section in KEPT_SECTIONS or key in KEPT_PROPERTIES.get(section, ())
        ]
        if keys:
            kept.add_section(section)
            for key in keys:
                kept.set(section, key, parser.get(section, key))
    text = io.StringIO()
    kept.write(text)
    return text.getvalue()

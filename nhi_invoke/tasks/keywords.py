"""The keyword arguments of `nhi_invoke.invocation()`: the `run` options by their Python names.

Each is declared once in the option registry (the core's and each broker's); this TypedDict
gives them static types for a user's type checker, and `tests/unit/test_tasks_keywords.py`
checks it names exactly the registry's options that the API takes. Values are read and
validated by the same code as the flags, variables and config file (`settings/`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from nhi_invoke import settings

PathLike = str | os.PathLike[str]


class InvocationSettings(TypedDict, total=False):
    """`run`'s options as keyword arguments (docs/agents.md, and `nhi-invoke run --help`)."""

    # The task (or step) and who runs it.
    step_id: str
    task_id: str
    agent: str
    on_behalf_of: str
    # AWS
    aws_role_arn: str
    aws_oidc_role_arn: str
    aws_region: str
    aws_duration: int
    aws_session_policy: PathLike
    aws_policy_arns: Sequence[str]
    tags: Mapping[str, str] | Sequence[str]
    aws_source_identity: bool
    aws_audience: str
    aws_revoke: bool
    # GCP
    gcp_provider: str
    gcp_service_account: str
    gcp_scopes: Sequence[str]
    gcp_lifetime: int
    gcp_project: str
    gcp_audience: str
    # Azure
    azure_client_id: str
    azure_tenant_id: str
    azure_audience: str
    azure_scopes: Sequence[str]
    azure_cloud: str
    azure_authority_host: str
    azure_ca_bundle: PathLike
    # Vault / OpenBao
    vault_addr: str
    vault_role: str
    vault_secrets: Sequence[str]
    vault_namespace: str
    vault_ttl: int
    vault_auth_path: str
    vault_audience: str
    # Where the OIDC token comes from (or `token=`), the ledger, the rest.
    token_file: PathLike
    token_env: str
    token_command: str | Sequence[str]
    ledger: PathLike
    ledger_key_file: PathLike
    config: PathLike
    keep_oidc_env: bool
    timeout: int
    ca_bundle: PathLike


# Options of `run` that serve a child process's lifetime, which an in-process task does not have.
NOT_IN_API: Mapping[str, str] = {
    "serve": "serve credentials to long-lived tools with `nhi-invoke run --serve -- TOOL`",
    "refresh_margin": "it only applies to `nhi-invoke run --serve`",
    "expect_duration": "give the task's credentials the lifetime it needs (aws_duration=…)",
    "kill_grace": "there is no child process to stop",
    "step_outputs": "a CI step's outputs come from `nhi-invoke run --step-outputs -- CMD`",
}


def checked(given: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments, by option name; a name that is not an option is a TypeError, as
    for any Python function (with the nearest option named)."""
    known = settings.by_name(environ)
    for name in given:
        if name in NOT_IN_API:
            raise TypeError(f"{name}= is not available in the Python API: {NOT_IN_API[name]}")
        if name not in known:
            near = difflib.get_close_matches(name, [n for n in known if n not in NOT_IN_API], 1)
            also = f"; did you mean {near[0]}=?" if near else ""
            raise TypeError(f"invocation() got an unexpected keyword argument {name!r}{also}")
    return {name: _plain(value) for name, value in given.items()}


def _plain(value: Any) -> Any:
    """Paths as text and sequences as tuples, as the option parsers take them from flags."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list):
        return tuple(value)
    return value

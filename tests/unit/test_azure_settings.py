"""Azure's options, their checks, the plan's decisions, and Entra's refusals as exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nhi_invoke.brokers.azure.refusals import Attempt, EntraError, refusal
from nhi_invoke.ci.interface import LOCAL
from nhi_invoke.errors import ConfigError
from nhi_invoke.settings.resolve import resolve

CLIENT = "3f2e1d0c-9b8a-4765-a432-10fedcba9876"
TENANT = "5b0f3c1e-2d4a-4f6b-8c7d-9e0f1a2b3c4d"
GIVEN = {"azure_client_id": CLIENT, "azure_tenant_id": TENANT}


def azure(given: dict[str, Any], environ: dict[str, str] | None = None, cwd: str = "/none") -> Any:
    (choice,) = resolve(given, environ or {}, LOCAL, cwd).brokers
    return choice.settings


def test_the_defaults_are_the_public_cloud_and_resource_manager() -> None:
    found = azure(GIVEN)
    assert found.authority == "https://login.microsoftonline.com"
    assert found.scopes == ("https://management.azure.com/.default",)
    assert found.audience == "api://AzureADTokenExchange"
    assert found.ca_file is None


@pytest.mark.parametrize(
    ("cloud", "authority", "scope"),
    [
        (
            "AzureUSGovernment",
            "https://login.microsoftonline.us",
            "https://management.usgovcloudapi.net/.default",
        ),
        (
            "azurechinacloud",
            "https://login.chinacloudapi.cn",
            "https://management.chinacloudapi.cn/.default",
        ),
    ],
)
def test_a_cloud_chooses_the_authority_and_the_default_scope(
    cloud: str, authority: str, scope: str
) -> None:
    found = azure(GIVEN | {"azure_cloud": cloud})
    assert (found.authority, found.scopes) == (authority, (scope,))


def test_azure_authority_host_overrides_the_authority_as_azure_identity_does() -> None:
    found = azure(GIVEN, {"AZURE_AUTHORITY_HOST": "login.example.test/"})
    assert found.authority == "https://login.example.test"
    with pytest.raises(ConfigError, match="is not an https URL"):
        azure(GIVEN, {"AZURE_AUTHORITY_HOST": "http://127.0.0.1:9"})


def test_the_authority_and_the_ca_may_not_come_from_a_repository_file(tmp_path: Path) -> None:
    (tmp_path / "nhi-invoke.toml").write_text('[defaults]\nazure-authority-host = "x"\n')
    with pytest.raises(ConfigError, match="may not be set in the config file"):
        azure(GIVEN, cwd=str(tmp_path))


def test_scopes_come_from_flags_or_one_variable() -> None:
    vault = "https://vault.azure.net/.default"
    found = azure(GIVEN, {"NHI_AZURE_SCOPES": f"{vault}, api://my-api/.default"})
    assert found.scopes == (vault, "api://my-api/.default")


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"azure_client_id": "my-app"}, "is not a client id"),
        ({"azure_tenant_id": "common"}, "names no tenant"),
        ({"azure_tenant_id": "not a tenant"}, "neither a tenant id nor a domain"),
        ({"azure_scopes": ["https://management.azure.com"]}, "is not a <resource>/.default scope"),
        ({"azure_scopes": ["ftp://x/.default"]}, "names no resource"),
        ({"azure_cloud": "AzureGermanCloud"}, "is not an Azure cloud"),
        ({"azure_audience": "api://with space"}, "not an audience"),
    ],
)
def test_invalid_values_are_configuration_errors(given: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        azure(GIVEN | given)


def test_a_tenant_may_be_a_domain_and_ids_are_compared_in_lower_case() -> None:
    found = azure({"azure_client_id": CLIENT.upper(), "azure_tenant_id": "Contoso.onmicrosoft.com"})
    assert (found.client_id, found.tenant_id) == (CLIENT, "contoso.onmicrosoft.com")


def test_a_client_id_needs_a_tenant_and_a_tenant_a_client_id() -> None:
    with pytest.raises(ConfigError, match="no --azure-tenant-id"):
        azure({"azure_client_id": CLIENT})
    with pytest.raises(
        ConfigError,
        match=r"--azure-tenant-id is given \(by --azure-tenant-id\) but --azure-client-id is not",
    ):
        resolve(
            {"azure_tenant_id": TENANT, "aws_role_arn": "arn:aws:iam::123456789012:role/r"},
            {},
            LOCAL,
            "/x",
        )


def test_a_missing_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"NHI_AZURE_CA_BUNDLE=.* is not a readable file"):
        azure(GIVEN, {"NHI_AZURE_CA_BUNDLE": str(tmp_path / "none.pem")})


# -- Entra's refusals ---------------------------------------------------------------------

ATTEMPT = Attempt(
    CLIENT,
    TENANT,
    "api://AzureADTokenExchange",
    "https://management.azure.com/.default",
    {"iss": "https://token.actions.githubusercontent.com", "sub": "repo:o/r:ref:refs/heads/main",
     "aud": "api://AzureADTokenExchange", "exp": 1_800_000_000},
)  # fmt: skip


def answer(code: int, error: str = "invalid_client", status: int = 400) -> EntraError:
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: What Entra says.\r\nTrace ID: 5 Correlation ID: 6 "
        "Timestamp: 2026-01-01 00:00:00Z",
        "error_codes": [code],
    }
    return EntraError.parse(status, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("code", "exit_code", "needle"),
    [
        (700211, 77, "issuer 'https://token.actions.githubusercontent.com'"),
        (700212, 77, "audience 'api://AzureADTokenExchange'"),
        (700213, 77, "subject 'repo:o/r:ref:refs/heads/main' the token carried"),
        (7002138, 77, "only in upper and lower case"),
        (70021, 77, "issuer 'https://token.actions.githubusercontent.com', subject"),
        (700016, 78, f"no application {CLIENT}"),
        (90002, 78, f"no tenant '{TENANT}'"),
        (50053, 77, "blocked sign-ins"),
        (53003, 77, "Conditional Access"),
        (700024, 65, "expiry 08:00:00Z"),
        (50027, 65, "not read the OIDC token as a JWT"),
        (700027, 65, "signature"),
        (7000272, 65, "signature"),
        (50166, 69, "could not fetch the OIDC discovery document"),
        (1002012, 78, "refused the scope"),
        (70011, 78, "refused the scope"),
        (500011, 78, "refused the scope"),
        (7000112, 77, "is disabled"),
    ],
)
def test_each_mapped_code_has_its_exit_code_and_names_what_to_fix(
    code: int, exit_code: int, needle: str
) -> None:
    error = refusal(answer(code), ATTEMPT)
    assert error.exit_code == exit_code
    assert needle in error.message
    assert f"AADSTS{code}" in error.message
    assert error.hint
    assert "Trace ID" not in error.one_line()


def test_an_unknown_code_keeps_entras_words_and_its_code() -> None:
    error = refusal(answer(9999999, "invalid_grant"), ATTEMPT)
    assert (error.exit_code, error.message.endswith("What Entra says. (AADSTS9999999)")) == (
        77,
        True,
    )
    assert refusal(answer(9999998, "invalid_request"), ATTEMPT).exit_code == 78


def test_an_answer_that_is_not_json_is_shown_as_text() -> None:
    error = EntraError.parse(403, b"<html>blocked by a proxy</html>")
    assert (error.code, error.shown) == (None, "<html>blocked by a proxy</html>")
    assert refusal(error, ATTEMPT).exit_code == 77


def test_the_declarations_cloud_names_are_the_cloud_table() -> None:
    from nhi_invoke.brokers.azure.clouds import CLOUDS  # noqa: PLC0415
    from nhi_invoke.brokers.azure.declaration import CLOUD_NAMES  # noqa: PLC0415

    assert tuple(CLOUDS) == CLOUD_NAMES

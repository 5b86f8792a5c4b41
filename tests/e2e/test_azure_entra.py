"""The Entra emulator, driven by the real clients: azure-identity's ClientAssertionCredential
(in process) and WorkloadIdentityCredential (a child configured by its environment alone), and
MSAL, with real OIDC tokens from the e2e sandbox's issuer as client assertions."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity import (
    AzureAuthorityHosts,
    ClientAssertionCredential,
    WorkloadIdentityCredential,
)
from cryptography.hazmat.primitives.asymmetric import rsa

from nhi_invoke.oidc import fingerprint
from nhi_invoke.sandbox.azure import EntraEmulator
from nhi_invoke.sandbox.entra_directory import (
    BLOCKED_CLIENT_ID,
    DEFAULT_AUDIENCE,
    JWT_BEARER,
    SANDBOX_API,
    SANDBOX_CLIENT_ID,
    SANDBOX_DOMAIN,
    SANDBOX_OBJECT_ID,
    SANDBOX_SUBSCRIPTION_ID,
    SANDBOX_TENANT_ID,
    sandbox_directory,
)
from nhi_invoke.sandbox.oidc_issuer import KEY_ID, OidcIssuer
from tests.azure_fixtures import entra_get, github_subject, run_azure_child, sandbox_assertion

pytestmark = pytest.mark.e2e

ARM = "https://management.azure.com/.default"
NO_TENANT = "0e2b8c4d-0000-4000-8000-000000000000"
NO_CLIENT = "11111111-2222-4333-8444-555555555555"


def get_token(
    entra: EntraEmulator,
    assertion: str,
    *scopes: str,
    tenant: str = SANDBOX_TENANT_ID,
    client_id: str = SANDBOX_CLIENT_ID,
) -> Any:
    credential = ClientAssertionCredential(
        tenant, client_id, lambda: assertion, authority=entra.url, connection_verify=entra.ca_file
    )
    return credential.get_token(*(scopes or (ARM,)))


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


# -- tokens ----------------------------------------------------------------------------------


def test_client_assertion_credential_gets_an_arm_token_for_the_federated_app(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    assertion = sandbox_assertion(sandbox)
    token = get_token(entra, assertion)
    claims = claims_of(token.token)
    assert claims["aud"] == "https://management.azure.com"
    assert claims["iss"] == f"https://sts.windows.net/{SANDBOX_TENANT_ID}/"
    assert (claims["tid"], claims["oid"], claims["sub"]) == (
        SANDBOX_TENANT_ID,
        SANDBOX_OBJECT_ID,
        SANDBOX_OBJECT_ID,
    )
    assert (claims["appid"], claims["appidacr"], claims["ver"]) == (SANDBOX_CLIENT_ID, "2", "1.0")
    assert claims["exp"] - claims["iat"] == 3599
    assert abs(token.expires_on - claims["exp"]) <= 2


def test_a_v2_resource_gets_a_v2_token_with_azp(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    claims = claims_of(
        get_token(entra, sandbox_assertion(sandbox), f"{SANDBOX_API}/.default").token
    )
    assert claims["ver"] == "2.0"
    assert claims["iss"] == f"{entra.url}/{SANDBOX_TENANT_ID}/v2.0"
    assert (claims["azp"], claims["azpacr"]) == (SANDBOX_CLIENT_ID, "2")
    assert "appid" not in claims
    assert claims["aud"] != SANDBOX_API  # v2 tokens name the resource by its app id


def test_the_tenant_may_be_named_by_its_domain(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    token = get_token(entra, sandbox_assertion(sandbox), tenant=SANDBOX_DOMAIN)
    assert claims_of(token.token)["tid"] == SANDBOX_TENANT_ID


def test_whoami_proves_the_identity_a_token_carries(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    token = get_token(entra, sandbox_assertion(sandbox)).token
    status, body = entra_get(
        entra,
        "/__sandbox/whoami?audience=https://management.azure.com",
        Authorization=f"Bearer {token}",
    )
    assert status == 200
    assert body["claims"]["appid"] == SANDBOX_CLIENT_ID
    assert 3500 < body["expires_in"] <= 3599


def test_whoami_refuses_a_missing_forged_or_misdirected_token(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    token = get_token(entra, sandbox_assertion(sandbox)).token
    forged = jwt.encode(
        claims_of(token), rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
    )
    assert entra_get(entra, "/__sandbox/whoami")[1]["error"]["code"] == "AuthenticationFailed"
    status, body = entra_get(entra, "/__sandbox/whoami", Authorization=f"Bearer {forged}")
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    status, body = entra_get(
        entra, "/__sandbox/whoami?audience=https://vault.azure.net", Authorization=f"Bearer {token}"
    )
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenAudience")


def test_arm_lists_the_sandbox_subscription_for_a_management_token_only(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    assertion = sandbox_assertion(sandbox)
    for scope in (ARM, "https://management.core.windows.net//.default"):
        token = get_token(entra, assertion, scope).token
        status, body = entra_get(
            entra, "/subscriptions?api-version=2022-12-01", Authorization=f"Bearer {token}"
        )
        assert status == 200
        (subscription,) = body["value"]
        assert subscription["subscriptionId"] == SANDBOX_SUBSCRIPTION_ID
        assert subscription["tenantId"] == SANDBOX_TENANT_ID
    vault = get_token(entra, assertion, "https://vault.azure.net/.default").token
    status, body = entra_get(entra, "/subscriptions", Authorization=f"Bearer {vault}")
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenAudience")


def test_workload_identity_credential_from_the_environment_gets_a_token(
    entra: EntraEmulator, sandbox: dict[str, Any], azure_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "federated-token"
    token_file.write_text(sandbox_assertion(sandbox))
    env = azure_env | {
        "AZURE_TENANT_ID": SANDBOX_TENANT_ID,
        "AZURE_CLIENT_ID": SANDBOX_CLIENT_ID,
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
    }
    report = run_azure_child(env, "workload", ARM, "--whoami", f"{entra.url}/__sandbox/whoami")
    assert report["ok"], report
    assert report["whoami"]["claims"]["appid"] == SANDBOX_CLIENT_ID
    assert report["whoami"]["claims"]["aud"] == "https://management.azure.com"


def test_workload_identity_credential_rereads_its_token_file_only_every_ten_minutes(
    entra: EntraEmulator, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    token_file = tmp_path / "federated-token"
    first = sandbox_assertion(sandbox)
    token_file.write_text(first)
    credential = WorkloadIdentityCredential(
        tenant_id=SANDBOX_TENANT_ID,
        client_id=SANDBOX_CLIENT_ID,
        token_file_path=str(token_file),
        authority=entra.url,
        connection_verify=entra.ca_file,
    )
    credential.get_token(ARM)
    token_file.write_text(sandbox_assertion(sandbox))  # a fresh token, as a refresher would
    credential.get_token("https://vault.azure.net/.default")
    used = [r.assertion.fingerprint for r in entra.requests()[-2:] if r.assertion]
    assert used == [fingerprint(first), fingerprint(first)]


def test_azure_identity_refuses_an_authority_host_without_tls(
    sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "federated-token"
    token_file.write_text(sandbox_assertion(sandbox))
    env = base_env | {
        "AZURE_AUTHORITY_HOST": sandbox["oidc_issuer"],  # http://127.0.0.1:…
        "AZURE_TENANT_ID": SANDBOX_TENANT_ID,
        "AZURE_CLIENT_ID": SANDBOX_CLIENT_ID,
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
    }
    report = run_azure_child(env, "workload", ARM)
    assert not report["ok"]
    assert "The value must be a TLS protected (https) URL." in report["error"]


def test_azure_identity_knows_three_clouds_authority_hosts() -> None:
    assert {
        "public": AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        "us-government": AzureAuthorityHosts.AZURE_GOVERNMENT,
        "china": AzureAuthorityHosts.AZURE_CHINA,
    } == {
        "public": "login.microsoftonline.com",
        "us-government": "login.microsoftonline.us",
        "china": "login.chinacloudapi.cn",
    }


def test_requests_lets_the_environment_ca_bundle_override_a_sessions_verify(
    entra: EntraEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    session = requests.Session()
    session.verify = entra.ca_file
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{entra.url}/common/discovery/keys", timeout=10)
    assert session.get(f"{entra.url}/common/discovery/keys", verify=entra.ca_file).ok
    session.trust_env = False
    assert session.get(f"{entra.url}/common/discovery/keys", timeout=10).ok


def test_clients_refuse_the_emulator_without_its_ca(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    assertion = sandbox_assertion(sandbox)
    credential = ClientAssertionCredential(
        SANDBOX_TENANT_ID, SANDBOX_CLIENT_ID, lambda: assertion, authority=entra.url, retry_total=0
    )
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        credential.get_token(ARM)


def test_msal_discovers_the_authority_then_asks_for_a_token(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    session = requests.Session()
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from the environment override
    # Session.verify; this machine sets both.
    session.trust_env = False
    session.verify = entra.ca_file
    before = len(entra.requests())
    app = msal.ConfidentialClientApplication(
        SANDBOX_CLIENT_ID,
        client_credential={"client_assertion": lambda: sandbox_assertion(sandbox)},
        authority=f"{entra.url}/{SANDBOX_TENANT_ID}",
        instance_discovery=f"{entra.url}/common/discovery/instance",
        http_client=session,
    )
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result.get("error_description")
    assert claims_of(result["access_token"])["aud"] == "https://graph.microsoft.com"
    seen = entra.requests()[before:]
    assert [(r.method, r.path) for r in seen] == [
        ("GET", "/common/discovery/instance"),
        ("GET", f"/{SANDBOX_TENANT_ID}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{SANDBOX_TENANT_ID}/oauth2/v2.0/token"),
    ]
    token_request = seen[-1]
    assert token_request.client_sku == "MSAL.Python"
    assert token_request.client_request_id == token_request.correlation_id


# -- what the emulator records and answers ---------------------------------------------------


def test_requests_are_recorded_with_the_assertion_only_as_fingerprint_and_claims(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    assertion = sandbox_assertion(sandbox)
    token = get_token(entra, assertion).token
    (recorded,) = [
        r
        for r in entra.requests()
        if r.assertion and r.assertion.fingerprint == fingerprint(assertion)
    ]
    assert "client_assertion" not in recorded.form
    assert recorded.form["client_assertion_type"] == JWT_BEARER
    assert recorded.assertion is not None
    assert recorded.assertion.claims is not None
    assert recorded.assertion.claims["sub"] == github_subject(sandbox["environ"])
    assert recorded.token_fingerprint == fingerprint(token)
    assert str(recorded.user_agent).startswith("azsdk-python-identity/")
    status, published = entra_get(entra, "/__sandbox/requests")
    assert status == 200
    assert assertion not in json.dumps(published)
    assert token not in json.dumps(published)


def test_a_guid_client_request_id_becomes_the_correlation_id_and_is_echoed(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": SANDBOX_CLIENT_ID,
        "scope": ARM,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": sandbox_assertion(sandbox),
    }
    url = f"{entra.url}/{SANDBOX_TENANT_ID}/oauth2/v2.0/token"
    guid = str(uuid.uuid4())
    answer = requests.post(
        url,
        data=form,
        headers={"client-request-id": guid, "x-client-SKU": "nhi-invoke", "x-client-Ver": "0.1"},
        verify=entra.ca_file,
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["client-request-id"] == guid
    assert sorted(answer.json()) == ["access_token", "expires_in", "ext_expires_in", "token_type"]
    recorded = entra.requests()[-1]
    assert (recorded.client_request_id, recorded.correlation_id) == (guid, guid)
    assert (recorded.client_sku, recorded.client_ver) == ("nhi-invoke", "0.1")
    # Not a GUID: recorded as sent, but Entra cannot use it as the correlation id.
    answer = requests.post(
        url,
        data=form | {"client_id": str(uuid.uuid4())},
        headers={"client-request-id": "inv-7f3k2q"},
        verify=entra.ca_file,
        timeout=10,
    )
    assert "client-request-id" not in answer.headers
    recorded = entra.requests()[-1]
    assert recorded.client_request_id == "inv-7f3k2q"
    assert answer.json()["correlation_id"] == recorded.correlation_id != "inv-7f3k2q"


def test_an_error_body_is_shaped_as_entras(entra: EntraEmulator, sandbox: dict[str, Any]) -> None:
    guid = str(uuid.uuid4())
    answer = requests.post(
        f"{entra.url}/{SANDBOX_TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": str(uuid.uuid4()),
            "scope": ARM,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": sandbox_assertion(sandbox),
        },
        headers={"client-request-id": guid},
        verify=entra.ca_file,
        timeout=10,
    )
    body = answer.json()
    assert answer.status_code == 400
    assert body["error"] == "unauthorized_client"
    assert body["error_codes"] == [700016]
    assert body["error_description"].startswith("AADSTS700016: Application with identifier ")
    assert body["error_description"].endswith(
        f" Trace ID: {body['trace_id']} Correlation ID: {guid} Timestamp: {body['timestamp']}"
    )
    assert body["correlation_id"] == guid
    assert time.strptime(body["timestamp"], "%Y-%m-%d %H:%M:%SZ")
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=700016"


def test_discovery_of_an_unknown_tenant_is_refused_with_90002(entra: EntraEmulator) -> None:
    status, body = entra_get(entra, "/no-such-tenant/v2.0/.well-known/openid-configuration")
    assert (status, body["error"], body["error_codes"]) == (400, "invalid_tenant", [90002])


def test_the_ca_file_holds_only_a_certificate_and_goes_with_the_emulator() -> None:
    emulator = EntraEmulator(sandbox_directory([])).start()
    folder = Path(emulator.ca_file).parent
    assert [p.name for p in folder.iterdir()] == ["ca.pem"]
    text = Path(emulator.ca_file).read_text()
    assert text.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in text
    emulator.stop()
    assert not folder.exists()


def test_the_emulator_serves_a_certificate_from_a_trustme_ca(
    sandbox: dict[str, Any],
    trustme_ca: Any,
    base_env: dict[str, str],
    tmp_path: Path,
) -> None:
    from tests.azure_fixtures import trustme_tls  # noqa: PLC0415

    subject = github_subject(sandbox["environ"])
    tls = trustme_tls(trustme_ca, tmp_path)
    emulator = EntraEmulator(sandbox_directory([(sandbox["oidc_issuer"], subject)]), tls).start()
    try:
        token_file = tmp_path / "federated-token"
        token_file.write_text(sandbox_assertion(sandbox))
        env = base_env | {
            "AZURE_AUTHORITY_HOST": emulator.url,
            "REQUESTS_CA_BUNDLE": tls.ca_file,
            "AZURE_TENANT_ID": SANDBOX_TENANT_ID,
            "AZURE_CLIENT_ID": SANDBOX_CLIENT_ID,
            "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        }
        report = run_azure_child(env, "workload", ARM)
        assert report["ok"], report
        assert report["claims"]["appid"] == SANDBOX_CLIENT_ID
    finally:
        emulator.stop()


# -- refusals, through the client ------------------------------------------------------------


def refusal(excinfo: pytest.ExceptionInfo[ClientAuthenticationError]) -> tuple[int, str]:
    response = excinfo.value.response
    assert response is not None
    return response.status_code, str(excinfo.value)


def test_an_unknown_subject_is_refused_with_700213_naming_it(
    entra: EntraEmulator, assertion_issuer: OidcIssuer
) -> None:
    assertion = assertion_issuer.mint(
        DEFAULT_AUDIENCE, sub="repo:nhi-sandbox/demo:ref:refs/heads/dev"
    )
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, assertion)
    status, message = refusal(excinfo)
    assert status == 401
    assert (
        "(invalid_client) AADSTS700213: No matching federated identity record found for presented"
        " assertion subject 'repo:nhi-sandbox/demo:ref:refs/heads/dev'." in message
    )


def test_a_subject_differing_only_in_case_is_refused_with_7002138(
    entra: EntraEmulator, assertion_issuer: OidcIssuer
) -> None:
    assertion = assertion_issuer.mint(
        DEFAULT_AUDIENCE, sub="repo:NHI-sandbox/demo:ref:refs/heads/main"
    )
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, assertion)
    assert "AADSTS7002138: " in refusal(excinfo)[1]
    assert "matches with case-insensitive comparison" in refusal(excinfo)[1]


def test_a_wrong_audience_is_refused_with_700212_naming_it(
    entra: EntraEmulator, sandbox: dict[str, Any]
) -> None:
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, sandbox_assertion(sandbox, audience="api://AzureADMyOrg"))
    status, message = refusal(excinfo)
    assert status == 401
    assert (
        "AADSTS700212: No matching federated identity record found for presented assertion "
        "audience 'api://AzureADMyOrg'." in message
    )


def test_an_untrusted_issuer_is_refused_with_700211_naming_it(
    entra: EntraEmulator, assertion_issuer: OidcIssuer
) -> None:
    assertion = assertion_issuer.mint(
        DEFAULT_AUDIENCE, iss="https://token.actions.githubusercontent.com"
    )
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, assertion)
    assert (
        "AADSTS700211: No matching federated identity record found for presented assertion issuer"
        " 'https://token.actions.githubusercontent.com'." in refusal(excinfo)[1]
    )


def test_the_older_single_code_70021_names_issuer_subject_and_audience(
    sandbox: dict[str, Any],
) -> None:
    subject = github_subject(sandbox["environ"])
    directory = sandbox_directory([(sandbox["oidc_issuer"], "repo:nhi-sandbox/other:ref:x")])
    emulator = EntraEmulator(directory, legacy_fic_errors=True).start()
    try:
        with pytest.raises(ClientAuthenticationError) as excinfo:
            get_token(emulator, sandbox_assertion(sandbox))
    finally:
        emulator.stop()
    status, message = refusal(excinfo)
    assert status == 400
    assert (
        "(invalid_request) AADSTS70021: No matching federated identity record found for presented"
        f" assertion. Assertion Issuer: '{sandbox['oidc_issuer']}'. Assertion Subject: "
        f"'{subject}'. Assertion Audience: '{DEFAULT_AUDIENCE}'." in message
    )


def test_an_expired_assertion_is_refused_with_700024(
    entra: EntraEmulator, assertion_issuer: OidcIssuer
) -> None:
    now = int(time.time())
    assertion = assertion_issuer.mint(DEFAULT_AUDIENCE, iat=now - 400, nbf=now - 400, exp=now - 100)
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, assertion)
    status, message = refusal(excinfo)
    assert status == 401
    assert (
        "AADSTS700024: Client assertion is not within its valid time range. Current time: "
        in message
    )
    assert ", expiry time of assertion " in message


@pytest.mark.parametrize(
    ("tenant", "client_id", "status", "expected"),
    [
        (
            NO_TENANT,
            SANDBOX_CLIENT_ID,
            400,
            f"(invalid_tenant) AADSTS90002: Tenant '{NO_TENANT}' not found.",
        ),
        (
            SANDBOX_TENANT_ID,
            NO_CLIENT,
            400,
            f"(unauthorized_client) AADSTS700016: Application with identifier '{NO_CLIENT}' "
            "was not found in the directory 'nhi-invoke sandbox'.",
        ),
        (SANDBOX_TENANT_ID, BLOCKED_CLIENT_ID, 400, "(invalid_grant) AADSTS50053: "),
    ],
    ids=["tenant", "application", "blocked"],
)
def test_the_directory_refuses_unknown_tenants_apps_and_blocked_apps(
    entra: EntraEmulator,
    sandbox: dict[str, Any],
    tenant: str,
    client_id: str,
    status: int,
    expected: str,
) -> None:
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, sandbox_assertion(sandbox), tenant=tenant, client_id=client_id)
    assert refusal(excinfo)[0] == status
    assert expected in refusal(excinfo)[1]


def test_signatures_are_checked_against_the_issuers_published_keys(
    entra: EntraEmulator, assertion_issuer: OidcIssuer
) -> None:
    claims = jwt.decode(
        assertion_issuer.mint(DEFAULT_AUDIENCE), options={"verify_signature": False}
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown_key = jwt.encode(claims, other, "RS256", headers={"kid": "rotated-away"})
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, unknown_key)
    assert "AADSTS7000272: The certificate with identifier rotated-away " in refusal(excinfo)[1]
    forged = jwt.encode(claims, other, "RS256", headers={"kid": KEY_ID})
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, forged)
    assert "AADSTS700027: Client assertion failed signature validation." in refusal(excinfo)[1]


def test_an_issuer_entra_cannot_reach_is_refused_with_50166(
    entra: EntraEmulator, assertion_issuer: OidcIssuer, unreachable_issuer: str
) -> None:
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, assertion_issuer.mint(DEFAULT_AUDIENCE, iss=unreachable_issuer))
    assert "AADSTS50166: Request to External OIDC endpoint failed." in refusal(excinfo)[1]


def test_a_malformed_assertion_is_refused_with_50027(entra: EntraEmulator) -> None:
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, "not-a-jwt")
    assert (
        "(invalid_request) AADSTS50027: JWT token is invalid or malformed." in refusal(excinfo)[1]
    )


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (("https://management.azure.com/user_impersonation",), "(invalid_scope) AADSTS1002012: "),
        ((ARM, "https://vault.azure.net/.default"), "(invalid_scope) AADSTS70011: "),
        (
            ("https://unknown.example.com/.default",),
            "(invalid_resource) AADSTS500011: The resource principal named "
            "https://unknown.example.com was not found",
        ),
    ],
    ids=["not-default", "two-resources", "unknown-resource"],
)
def test_only_one_known_resource_with_default_may_be_asked_for(
    entra: EntraEmulator, sandbox: dict[str, Any], scopes: tuple[str, ...], expected: str
) -> None:
    with pytest.raises(ClientAuthenticationError) as excinfo:
        get_token(entra, sandbox_assertion(sandbox), *scopes)
    assert expected in refusal(excinfo)[1]

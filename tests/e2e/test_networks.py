"""nhi-invoke on a runner's network: the emulators reachable only by name, only through an
egress proxy, and over HTTPS only with a private CA (tests/net/, docs/networks.md).

Every request of nhi-invoke's own goes through `nhi_invoke.net`, which reads the proxy and
CA variables as the SDKs do: the proxy sees every call (the CI token endpoint, STS, IAM for
a revocation, GCP STS and IAM Credentials), `NO_PROXY` exempts what it names, and a TLS or
proxy failure is one line naming the host, the proxy and the CA setting.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.clients.fixtures import CLIENTS, GOOGLE_AUTH_CLIENT, client_report
from tests.e2e.runs import Result, deny_policies, ledger_events, run_nhi
from tests.net.network import GCP_HOST, IAM_HOST, STS_HOST, TOKEN_HOST, EmulatorNetwork
from tests.net.proxy import ForwardProxy

pytestmark = pytest.mark.e2e
SERVE_SECRETS = CLIENTS / "serve_secrets.py"


@pytest.fixture
def plain_named_env(
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    emulator_network: EmulatorNetwork,
    forward_proxy: ForwardProxy,
) -> dict[str, str]:
    """Every emulator at http://<test hostname>, reachable only through the proxy, which then
    logs every request with its path."""
    return emulator_network.named_environ(sandbox, github_env, scheme="http") | {
        "HTTP_PROXY": forward_proxy.url,
        "HTTPS_PROXY": forward_proxy.url,
    }


def _aws(sandbox: dict[str, Any], *, chained: bool = False) -> list[str]:
    entry = ["--aws-oidc-role-arn", sandbox["entry_role_arn"], "--aws-revoke"] if chained else []
    return [*entry, "--aws-role-arn", sandbox["target_role_arn"]]


def _gcp(sandbox: dict[str, Any]) -> list[str]:
    return [
        "--gcp-provider",
        sandbox["gcp_provider"],
        "--gcp-service-account",
        sandbox["gcp_service_account"],
    ]


def _run(options: list[str], env: dict[str, str], step: str = "net") -> Result:
    return run_nhi(["run", "--step-id", step, *options, "--", "true"], env)


def _calls(proxy: ForwardProxy) -> Counter[tuple[str, str]]:
    """What the proxy forwarded: (host, path without query) -> how many times."""
    return Counter(
        (r.host, (r.path or "").split("?")[0]) for r in proxy.records if r.outcome == "forwarded"
    )


def _issued(env: dict[str, str], cloud: str) -> list[dict[str, Any]]:
    return [
        e for e in ledger_events(env) if e["event"] == "credential.issued" and e["cloud"] == cloud
    ]


def _one_line_error(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("nhi-invoke: error")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_an_aws_single_hop_goes_through_the_proxy_only(
    plain_named_env: dict[str, str], sandbox: dict[str, Any], forward_proxy: ForwardProxy
) -> None:
    result = _run(_aws(sandbox), plain_named_env)
    assert result.code == 0, result.stderr
    calls = _calls(forward_proxy)
    assert set(calls) == {(TOKEN_HOST, calls_path(calls, TOKEN_HOST)), (STS_HOST, "/")}
    assert calls[(STS_HOST, "/")] == len(_issued(plain_named_env, "aws")) == 1
    assert all(r.outcome == "forwarded" for r in forward_proxy.records)


def calls_path(calls: Counter[tuple[str, str]], host: str) -> str:
    (path,) = {p for h, p in calls if h == host}
    return path


def test_a_chained_run_with_revocation_sends_sts_and_iam_through_the_proxy(
    plain_named_env: dict[str, str], sandbox: dict[str, Any], forward_proxy: ForwardProxy
) -> None:
    result = _run(_aws(sandbox, chained=True), plain_named_env, step="net-chain")
    assert result.code == 0, result.stderr
    calls = _calls(forward_proxy)
    issued = _issued(plain_named_env, "aws")
    assert calls[(STS_HOST, "/")] == len(issued) == 2  # the entry hop and the chained hop
    # The revocation: list the role's policies (to prune), then put the deny policy.
    assert calls[(IAM_HOST, "/")] >= 2
    revoked = [e for e in ledger_events(plain_named_env) if e["event"] == "credential.revoked"]
    assert len(revoked) == 1
    child = next(e for e in issued if e["purpose"] == "child")
    assert child["principal_id"] in deny_policies(sandbox).values()
    assert {r.host for r in forward_proxy.records} == {TOKEN_HOST, STS_HOST, IAM_HOST}


def test_gcp_goes_through_the_proxy_only(
    plain_named_env: dict[str, str], sandbox: dict[str, Any], forward_proxy: ForwardProxy
) -> None:
    result = _run(_gcp(sandbox), plain_named_env)
    assert result.code == 0, result.stderr
    calls = _calls(forward_proxy)
    assert calls[(GCP_HOST, "/v1/token")] == 1
    account = sandbox["gcp_service_account"]
    assert calls[(GCP_HOST, f"/v1/projects/-/serviceAccounts/{account}:generateAccessToken")] == 1
    assert {r.host for r in forward_proxy.records} == {TOKEN_HOST, GCP_HOST}


def test_both_clouds_go_through_the_proxy_only(
    plain_named_env: dict[str, str], sandbox: dict[str, Any], forward_proxy: ForwardProxy
) -> None:
    result = _run([*_aws(sandbox), *_gcp(sandbox)], plain_named_env)
    assert result.code == 0, result.stderr
    assert {r.host for r in forward_proxy.records} == {TOKEN_HOST, STS_HOST, GCP_HOST}
    assert _calls(forward_proxy)[(STS_HOST, "/")] == 1
    # One OIDC token per audience, each fetched through the proxy.
    assert sum(n for (host, _), n in _calls(forward_proxy).items() if host == TOKEN_HOST) == 2


@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy_exempts_what_it_names(
    plain_named_env: dict[str, str],
    sandbox: dict[str, Any],
    forward_proxy: ForwardProxy,
    variable: str,
) -> None:
    # The token endpoint at its loopback address: the proxy would forward it (it forwards
    # loopback), unless NO_PROXY names it.
    direct = plain_named_env | {
        "ACTIONS_ID_TOKEN_REQUEST_URL": sandbox["environ"]["ACTIONS_ID_TOKEN_REQUEST_URL"]
    }
    loopback = sandbox["oidc_issuer"].split("//")[1].split(":")[0]
    proxied = _run(_aws(sandbox), direct)
    assert proxied.code == 0, proxied.stderr
    assert loopback in {r.host for r in forward_proxy.records}
    forward_proxy.clear()
    exempt = _run(_aws(sandbox), direct | {variable: f"example.org, {loopback}"})
    assert exempt.code == 0, exempt.stderr
    assert {r.host for r in forward_proxy.records} == {STS_HOST}


def test_a_proxy_that_requires_credentials_gets_those_in_the_proxy_url(
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    authenticating_proxy: ForwardProxy,
    emulator_network: EmulatorNetwork,
) -> None:
    assert authenticating_proxy.credentials is not None
    password = authenticating_proxy.credentials.password
    # https through the authenticating proxy: the credentials go on the CONNECT.
    env = emulator_network.named_environ(sandbox, github_env) | {
        "HTTPS_PROXY": authenticating_proxy.url_with_credentials,
        "HTTP_PROXY": authenticating_proxy.url_with_credentials,
        "NHI_CA_BUNDLE": str(emulator_network.ca.bundle),
    }
    admitted = _run([*_aws(sandbox), *_gcp(sandbox)], env)
    assert admitted.code == 0, admitted.stderr
    assert {r.outcome for r in authenticating_proxy.records} == {"tunnelled"}
    assert all(r.authorized for r in authenticating_proxy.records)
    authenticating_proxy.clear()
    wrong = authenticating_proxy.url_with_credentials.replace(password, "not-the-password")
    refused = _run(_aws(sandbox), env | {"HTTPS_PROXY": wrong, "HTTP_PROXY": wrong})
    assert refused.code == 78
    line = _one_line_error(refused)
    assert f"the proxy {authenticating_proxy.url} (HTTPS_PROXY) refused" in line
    assert "407" in line
    assert "not-the-password" not in refused.stdout + refused.stderr
    assert [r.outcome for r in authenticating_proxy.records] == ["proxy-auth-required"]
    missing = _run(_aws(sandbox), env | {"HTTPS_PROXY": authenticating_proxy.url})
    assert missing.code == 78
    assert "put the proxy's user and password in HTTPS_PROXY" in _one_line_error(missing)


def test_an_unreachable_proxy_is_named_in_the_error(
    plain_named_env: dict[str, str], sandbox: dict[str, Any]
) -> None:
    gone = "http://127.0.0.1:9"  # discard: nothing listens
    result = _run([*_aws(sandbox), "--timeout", "2"], plain_named_env | {"HTTP_PROXY": gone})
    assert result.code == 69
    line = _one_line_error(result)
    assert "the proxy http://127.0.0.1:9 (HTTP_PROXY) refused the connection" in line


# --- a private CA ---------------------------------------------------------------------


@pytest.fixture
def tls_named_env(named_env: dict[str, str], emulator_network: EmulatorNetwork) -> dict[str, str]:
    """Every emulator at https://<test hostname>, through the proxy; no CA setting."""
    return named_env


def test_aws_ca_bundle_for_sts_and_requests_ca_bundle_for_the_token_and_gcp(
    tls_named_env: dict[str, str],
    sandbox: dict[str, Any],
    emulator_network: EmulatorNetwork,
    forward_proxy: ForwardProxy,
) -> None:
    ca = str(emulator_network.ca.bundle)
    handshakes = emulator_network.handshakes()
    env = tls_named_env | {"AWS_CA_BUNDLE": ca, "REQUESTS_CA_BUNDLE": ca}
    result = _run([*_aws(sandbox, chained=True), *_gcp(sandbox)], env, step="tls")
    assert result.code == 0, result.stderr
    after = emulator_network.handshakes()
    for host in (TOKEN_HOST, STS_HOST, GCP_HOST):
        assert after[host] > handshakes[host], host
    assert {r.outcome for r in forward_proxy.records} == {"tunnelled"}
    # The two STS hops and the revocation's IAM calls shared kept-alive tunnels.
    sts_tunnels = [r for r in forward_proxy.records if r.host == STS_HOST]
    assert len(sts_tunnels) < len(_issued(env, "aws")) + 2


def test_aws_ca_bundle_alone_does_not_make_the_token_endpoint_trusted(
    tls_named_env: dict[str, str], sandbox: dict[str, Any], emulator_network: EmulatorNetwork
) -> None:
    env = tls_named_env | {"AWS_CA_BUNDLE": str(emulator_network.ca.bundle)}
    result = _run(_aws(sandbox), env)
    assert result.code == 69
    line = _one_line_error(result)
    assert f"TLS: {TOKEN_HOST} presented a certificate that is not trusted" in line
    assert f"through the proxy {tls_named_env['HTTPS_PROXY']} (HTTPS_PROXY)" in line
    assert "CA: the system's CAs" in line
    assert "REQUESTS_CA_BUNDLE or --ca-bundle" in line


def test_requests_ca_bundle_alone_does_not_make_sts_trusted(
    tls_named_env: dict[str, str], sandbox: dict[str, Any], emulator_network: EmulatorNetwork
) -> None:
    ca = str(emulator_network.ca.bundle)
    result = _run(_aws(sandbox), tls_named_env | {"REQUESTS_CA_BUNDLE": ca})
    assert result.code == 69
    line = _one_line_error(result)
    assert f"TLS: {STS_HOST} presented a certificate that is not trusted" in line
    assert "AWS_CA_BUNDLE or --ca-bundle" in line
    assert not _issued(tls_named_env, "aws")


@pytest.mark.parametrize("how", ["--ca-bundle", "NHI_CA_BUNDLE"])
def test_a_ca_bundle_given_to_nhi_invoke_serves_every_call(
    tls_named_env: dict[str, str],
    sandbox: dict[str, Any],
    emulator_network: EmulatorNetwork,
    how: str,
) -> None:
    ca = str(emulator_network.ca.bundle)
    options = [*_aws(sandbox, chained=True), *_gcp(sandbox)]
    env = dict(tls_named_env)
    if how == "--ca-bundle":
        options = ["--ca-bundle", ca, *options]
    else:
        env[how] = ca
    result = _run(options, env, step="ca-bundle")
    assert result.code == 0, result.stderr
    assert len(_issued(env, "aws")) == 2
    assert len(_issued(env, "gcp")) == 2
    revoked = [e for e in ledger_events(env) if e["event"] == "credential.revoked"]
    assert len(revoked) == 1  # IAM, through the seam, trusted the bundle too


def test_without_any_ca_setting_the_first_call_fails_naming_its_host(
    tls_named_env: dict[str, str], sandbox: dict[str, Any], emulator_network: EmulatorNetwork
) -> None:
    refused = len(emulator_network.failed_handshakes()[TOKEN_HOST])
    result = _run(_aws(sandbox), tls_named_env)
    assert result.code == 69
    line = _one_line_error(result)
    assert f"TLS: {TOKEN_HOST} presented a certificate that is not trusted" in line
    assert "certificate verify failed" in line.lower() or "unable to get" in line
    # One refused handshake: a certificate nobody trusts is not retried.
    assert emulator_network.failed_handshakes()[TOKEN_HOST][refused:] == ["TLSV1_ALERT_UNKNOWN_CA"]
    assert [e["event"] for e in ledger_events(tls_named_env)][-1] == "invocation.finished"


def test_a_ca_bundle_that_is_not_a_pem_file_is_a_configuration_error(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--ca-bundle",
            str(bad),
            "--aws-role-arn",
            "arn:aws:iam::123456789012:role/x",
            "--",
            "true",
        ],
        base_env,
    )
    assert result.code == 78
    assert f"--ca-bundle {bad} holds no PEM certificate" in _one_line_error(result)


def test_the_dry_run_shows_the_ca_bundle(
    base_env: dict[str, str], emulator_network: EmulatorNetwork
) -> None:
    ca = str(emulator_network.ca.bundle)
    result = run_nhi(
        [
            "run",
            "--dry-run",
            "--json",
            "--aws-role-arn",
            "arn:aws:iam::123456789012:role/x",
            "--",
            "true",
        ],
        base_env | {"NHI_CA_BUNDLE": ca},
    )
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["ca_bundle"] == ca


def test_under_serve_the_commands_sdks_reach_the_endpoints_directly_not_by_the_proxy(
    plain_named_env: dict[str, str],
    sandbox: dict[str, Any],
    forward_proxy: ForwardProxy,
    tmp_path: Path,
) -> None:
    # With HTTP_PROXY set and no NO_PROXY, google-auth (requests) would send its metadata
    # requests, secret path included, to the proxy: the child's NO_PROXY names loopback.
    command = [
        sys.executable,
        str(SERVE_SECRETS),
        str(tmp_path / "serve-secrets.json"),
        sys.executable,
        str(GOOGLE_AUTH_CLIENT),
        f"http://{GCP_HOST}",  # tokeninfo, through the proxy like any other host
    ]
    result = run_nhi(["run", "--serve", *_gcp(sandbox), "--", *command], plain_named_env)
    assert result.code == 0, result.stdout + result.stderr
    report = client_report(result.stdout)
    assert report["email"] == sandbox["gcp_service_account"]
    assert report["credentials"] == "google.auth.compute_engine.credentials.Credentials"
    assert {r.host for r in forward_proxy.records} == {TOKEN_HOST, GCP_HOST}
    assert not [r for r in forward_proxy.records if r.host in ("127.0.0.1", "localhost")]


def test_the_command_lines_of_the_networks_page_validate(base_env: dict[str, str]) -> None:
    page = Path(__file__).parents[2] / "docs" / "networks.md"
    lines = [
        line.strip()
        for line in page.read_text().splitlines()
        if line.strip().startswith("nhi-invoke run ")
    ]
    assert len(lines) >= 3
    for line in lines:
        args = shlex.split(line)[1:]
        if "--dry-run" not in args:
            args.insert(1, "--dry-run")
        result = run_nhi(args, base_env)
        assert result.code == 0, (line, result.stderr)

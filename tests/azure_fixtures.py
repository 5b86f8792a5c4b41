"""Azure fixtures: the Entra emulator (TLS on 127.0.0.1) trusting the e2e sandbox's OIDC
issuer, an issuer of the tests' own for assertions the sandbox would never sign (expired,
foreign key, odd claims), and the environment a child needs to use azure-identity there.

Registered for every test by `tests/conftest.py`; the fixtures that build on `sandbox` and
`base_env` work where those exist (tests/e2e)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from nhi_invoke.sandbox.azure import EntraEmulator
from nhi_invoke.sandbox.entra_directory import DEFAULT_AUDIENCE, sandbox_directory
from nhi_invoke.sandbox.oidc_issuer import OidcIssuer
from nhi_invoke.sandbox.tls import ServerTls

AZURE_CHILD = str(Path(__file__).with_name("e2e") / "child_azure.py")


def github_subject(environ: dict[str, str]) -> str:
    """The `sub` GitHub gives a push to the job's ref: what the federated credential names."""
    return f"repo:{environ['GITHUB_REPOSITORY']}:ref:{environ['GITHUB_REF']}"


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: an issuer Entra cannot reach."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def assertion_issuer() -> Iterator[OidcIssuer]:
    """An OIDC issuer in the test process that signs whatever claims a test asks for."""
    issuer = OidcIssuer().start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="session")
def unreachable_issuer() -> str:
    return closed_port_url()


@pytest.fixture(scope="session")
def entra(
    sandbox: dict[str, Any], assertion_issuer: OidcIssuer, unreachable_issuer: str
) -> Iterator[EntraEmulator]:
    """The Entra emulator for the session. Its deployer app (SANDBOX_CLIENT_ID) federates the
    sandbox issuer's GitHub subject, the tests' own issuer's, and one issuer that is down."""
    subject = github_subject(sandbox["environ"])
    own = assertion_issuer.run
    trusted = [
        (sandbox["oidc_issuer"], subject),
        (assertion_issuer.url, f"repo:{own.repository}:ref:{own.ref}"),
        (unreachable_issuer, subject),
    ]
    emulator = EntraEmulator(sandbox_directory(trusted)).start()
    yield emulator
    emulator.stop()


def sandbox_assertion(sandbox: dict[str, Any], audience: str = DEFAULT_AUDIENCE) -> str:
    """A real OIDC token from the sandbox issuer, asked for as a GitHub job asks for one."""
    environ = sandbox["environ"]
    url = environ["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=" + urllib.parse.quote(audience)
    request = urllib.request.Request(
        url, headers={"Authorization": "Bearer " + environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return str(json.load(response)["value"])


@pytest.fixture
def azure_env(base_env: dict[str, str], entra: EntraEmulator) -> dict[str, str]:
    """A child's environment pointing azure-identity at the emulator: its authority host, and
    its CA as the only one requests trusts (the machine's own CA variables are not passed)."""
    return base_env | {"AZURE_AUTHORITY_HOST": entra.url, "REQUESTS_CA_BUNDLE": entra.ca_file}


def entra_get(entra: EntraEmulator, path: str, **headers: str) -> tuple[int, Any]:
    """A GET on the emulator, trusting its CA (and nothing from the environment)."""
    context = ssl.create_default_context(cafile=entra.ca_file)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(entra.url + path, headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def run_azure_child(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run tests/e2e/child_azure.py (azure-identity, configured by `env` alone); its report."""
    done = subprocess.run(
        [sys.executable, AZURE_CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="session")
def trustme_ca() -> trustme.CA:
    return trustme.CA()


def trustme_tls(ca: trustme.CA, folder: Path) -> ServerTls:
    """Server TLS from a trustme CA, for an emulator a test wants under a CA of its own."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = folder / "trustme-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    os.chmod(ca_file, 0o644)
    return ServerTls(context, str(ca_file))

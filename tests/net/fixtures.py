"""Fixtures for tests on a runner's network: a private CA, the sandbox's emulators behind
TLS fronts and test hostnames, and a forward proxy that alone can reach them. Imported by
tests/e2e/conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.net.network import EmulatorNetwork, sandbox_services
from tests.net.proxy import ForwardProxy, ProxyCredentials
from tests.net.tls import PrivateCa

__all__ = [
    "authenticating_proxy",
    "emulator_network",
    "forward_proxy",
    "named_env",
    "private_ca",
]


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    """A CA no system trusts; `.bundle` is its certificate (PEM) for a client to trust."""
    return PrivateCa(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(scope="session")
def emulator_network(sandbox: dict[str, Any], private_ca: PrivateCa) -> Iterator[EmulatorNetwork]:
    """The session's emulators as `*.nhi-test.invalid`, behind TLS fronts signed by the CA."""
    with EmulatorNetwork(private_ca, sandbox_services(sandbox)) as network:
        yield network


@pytest.fixture
def forward_proxy(emulator_network: EmulatorNetwork) -> Iterator[ForwardProxy]:
    """A forward proxy of this test's own (fresh records) that routes the test hostnames."""
    with ForwardProxy(emulator_network.routes()) as proxy:
        yield proxy


@pytest.fixture
def authenticating_proxy(
    emulator_network: EmulatorNetwork, tmp_path: Path
) -> Iterator[ForwardProxy]:
    """The same proxy, requiring basic credentials: give `url_with_credentials` to clients.

    Its password is registered with the end-to-end secret-leak sweep (a report file in the
    test's folder), so no run may print it or write it to a file."""
    credentials = ProxyCredentials.generate()
    report = tmp_path / "proxy-credentials.json"
    report.write_text(json.dumps({"secrets": [credentials.password]}))
    with ForwardProxy(emulator_network.routes(), credentials) as proxy:
        yield proxy


@pytest.fixture
def named_env(
    github_env: dict[str, str],
    sandbox: dict[str, Any],
    emulator_network: EmulatorNetwork,
    forward_proxy: ForwardProxy,
) -> dict[str, str]:
    """A GitHub job's environment whose every emulator is `https://<test hostname>`, reachable
    only through `forward_proxy` (`HTTPS_PROXY`, `HTTP_PROXY`). No CA setting: the test adds
    the one it is about (`AWS_CA_BUNDLE`, `REQUESTS_CA_BUNDLE`, `--ca-bundle`…)."""
    return emulator_network.named_environ(sandbox, github_env) | {
        "HTTPS_PROXY": forward_proxy.url,
        "HTTP_PROXY": forward_proxy.url,
    }

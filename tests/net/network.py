"""The sandbox's emulators under test hostnames that only the forward proxy resolves.

| hostname | emulator |
|---|---|
| `sts.nhi-test.invalid`, `iam.nhi-test.invalid` | moto (AWS STS and IAM) |
| `token.nhi-test.invalid` | the OIDC issuer (GitHub's token-request endpoint) |
| `gcp.nhi-test.invalid` | the GCP emulator (STS, IAM Credentials, tokeninfo) |

Each name serves plain HTTP on port 80 (the proxy forwards it to the emulator) and HTTPS on
port 443 (a `CONNECT` tunnel to a TLS front whose certificate the private CA signed).
`.invalid` never resolves (RFC 6761), so only a client that uses the proxy gets anywhere.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from tests.net.tls import PrivateCa, TlsFront

STS_HOST = "sts.nhi-test.invalid"
IAM_HOST = "iam.nhi-test.invalid"
TOKEN_HOST = "token.nhi-test.invalid"
GCP_HOST = "gcp.nhi-test.invalid"


def sandbox_services(sandbox: Mapping[str, Any]) -> dict[tuple[str, ...], str]:
    """The sandbox's emulators (`sandbox` is its ready file): their hostnames -> their URL."""
    return {
        (STS_HOST, IAM_HOST): sandbox["aws_endpoint"],
        (TOKEN_HOST,): sandbox["oidc_issuer"],
        (GCP_HOST,): sandbox["gcp_endpoint"],
    }


class EmulatorNetwork:
    """TLS fronts for some emulators, and the proxy routes that name them."""

    def __init__(self, ca: PrivateCa, services: Mapping[tuple[str, ...], str]) -> None:
        self.ca = ca
        self.upstreams = {name: url for names, url in services.items() for name in names}
        self.fronts = [TlsFront(ca, names, url) for names, url in services.items()]

    def front(self, hostname: str) -> TlsFront:
        """The TLS front that answers for `hostname`."""
        return next(f for f in self.fronts if hostname in f.hostnames)

    def routes(self) -> dict[str, str]:
        """For `ForwardProxy`: "name:80" -> the emulator, "name:443" -> its TLS front."""
        routes = {}
        for name, url in self.upstreams.items():
            routes[f"{name}:80"] = urllib.parse.urlsplit(url).netloc
            routes[f"{name}:443"] = self.front(name).address
        return routes

    def handshakes(self) -> dict[str, int]:
        """Completed TLS handshakes per front (named by its first hostname)."""
        return {f.hostnames[0]: f.handshakes for f in self.fronts}

    def failed_handshakes(self) -> dict[str, list[str]]:
        """Refused TLS handshakes per front, with OpenSSL's reason (e.g. an unknown CA)."""
        return {f.hostnames[0]: list(f.failed_handshakes) for f in self.fronts}

    def named_environ(
        self, sandbox: Mapping[str, Any], environ: Mapping[str, str], scheme: str = "https"
    ) -> dict[str, str]:
        """`environ` (a sandbox job's) with every emulator URL replaced by its test hostname."""
        named = dict(environ)
        issuer = sandbox["oidc_issuer"]
        token_url = named["ACTIONS_ID_TOKEN_REQUEST_URL"]
        assert token_url.startswith(issuer), token_url
        named["ACTIONS_ID_TOKEN_REQUEST_URL"] = f"{scheme}://{TOKEN_HOST}{token_url[len(issuer) :]}"
        named["AWS_ENDPOINT_URL_STS"] = f"{scheme}://{STS_HOST}"
        named["AWS_ENDPOINT_URL_IAM"] = f"{scheme}://{IAM_HOST}"
        named["NHI_GCP_STS_ENDPOINT"] = f"{scheme}://{GCP_HOST}"
        named["NHI_GCP_IAMCREDENTIALS_ENDPOINT"] = f"{scheme}://{GCP_HOST}"
        return named

    def start(self) -> EmulatorNetwork:
        for front in self.fronts:
            front.start()
        return self

    def stop(self) -> None:
        for front in self.fronts:
            front.stop()

    def __enter__(self) -> EmulatorNetwork:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

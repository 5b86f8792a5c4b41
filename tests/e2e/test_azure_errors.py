"""Entra's refusals through the installed nhi-invoke: each mapped AADSTS code gives its
one-line message naming the claim or option to fix, with its documented exit code, and the
command never starts. The Entra emulator answers each code as Entra does (docs/azure.md)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from nhi_invoke.sandbox.azure import EntraEmulator
from nhi_invoke.sandbox.entra_directory import (
    BLOCKED_CLIENT_ID,
    DEFAULT_AUDIENCE,
    SANDBOX_CLIENT_ID,
    SANDBOX_TENANT_ID,
    sandbox_directory,
)
from nhi_invoke.sandbox.oidc_issuer import KEY_ID, OidcIssuer
from tests.e2e.runs import ledger_events, run_nhi

pytestmark = pytest.mark.e2e

UNKNOWN_ID = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
OWN_SUBJECT = "repo:nhi-sandbox/demo:ref:refs/heads/main"  # the tests' issuer's federated one


@dataclass(frozen=True)
class Issuers:
    own: OidcIssuer  # trusted by the emulator for OWN_SUBJECT
    unreachable: str  # trusted, but Entra cannot fetch its keys
    folder: Path

    def token_file(self, token: str) -> list[str]:
        path = self.folder / "oidc-token"
        path.write_text(token)
        return ["--token-file", str(path)]

    def minted(self, **claims: Any) -> list[str]:
        return self.token_file(self.own.mint(DEFAULT_AUDIENCE, **claims))

    def forged(self, kid: str) -> list[str]:
        """A token naming the trusted issuer, signed by a key that is not its own."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        claims = self.own.run.claims(self.own.url, DEFAULT_AUDIENCE, int(time.time()))
        return self.token_file(jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}))


@dataclass(frozen=True)
class Case:
    code: int  # the AADSTS code the emulator answers
    args: Callable[[Issuers], list[str]]  # what makes Entra answer it
    exit_code: int
    message: str  # in the one line nhi-invoke prints
    legacy: bool = False  # the older single federated-credential code, 70021


def _client(client_id: str) -> list[str]:
    return ["--azure-client-id", client_id, "--azure-tenant-id", SANDBOX_TENANT_ID]


CASES = [
    Case(
        700211,
        lambda i: i.minted(iss="https://token.ci.example"),
        77,
        "no federated credential trusts its issuer 'https://token.ci.example' (AADSTS700211)"
        "; fix: add a federated credential to the app with issuer 'https://token.ci.example'",
    ),
    Case(
        700212,
        lambda i: ["--azure-audience", "api://ci-tokens"],
        77,
        "its audience 'api://ci-tokens' is not one a federated credential of the app accepts "
        "(AADSTS700212); fix: pass --azure-audience with the audience",
    ),
    Case(
        700213,
        lambda i: i.minted(sub="repo:nhi-sandbox/demo:ref:refs/heads/feature"),
        77,
        "no federated credential matches the subject 'repo:nhi-sandbox/demo:ref:refs/heads/"
        "feature' the token carried (AADSTS700213); fix: add a federated credential whose "
        "subject is 'repo:nhi-sandbox/demo:ref:refs/heads/feature' exactly",
    ),
    Case(
        7002138,
        lambda i: i.minted(sub="repo:NHI-Sandbox/demo:ref:refs/heads/main"),
        77,
        "differs from the token's 'repo:NHI-Sandbox/demo:ref:refs/heads/main' only in upper and "
        "lower case, and Entra compares them exactly (AADSTS7002138)",
    ),
    Case(
        70021,
        lambda i: i.minted(sub="repo:nhi-sandbox/demo:pull_request"),
        77,
        f"no federated credential matches its issuer '{{own}}', subject 'repo:nhi-sandbox/demo:"
        f"pull_request' and audience '{DEFAULT_AUDIENCE}' (AADSTS70021)",
        legacy=True,
    ),
    Case(
        700016,
        lambda i: _client(UNKNOWN_ID)[:2],
        78,
        f"Entra knows no application {UNKNOWN_ID} in tenant {SANDBOX_TENANT_ID} (AADSTS700016)"
        "; fix: check --azure-client-id",
    ),
    Case(
        90002,
        lambda i: ["--azure-tenant-id", UNKNOWN_ID],
        78,
        f"Entra knows no tenant '{UNKNOWN_ID}' at this authority (AADSTS90002); fix: check "
        "--azure-tenant-id, and --azure-cloud",
    ),
    Case(
        50053,
        lambda i: _client(BLOCKED_CLIENT_ID)[:2],
        77,
        f"Entra has blocked sign-ins of app {BLOCKED_CLIENT_ID} (AADSTS50053",
    ),
    Case(
        700024,
        lambda i: i.minted(exp=int(time.time()) - 20),
        65,
        "Entra found the OIDC token outside its validity",
    ),
    Case(
        700027,
        lambda i: i.forged(KEY_ID),
        65,
        "Entra could not verify the OIDC token's signature with the keys its issuer '{own}' "
        "publishes (AADSTS700027)",
    ),
    Case(
        7000272,
        lambda i: i.forged("a-retired-key"),
        65,
        "(AADSTS7000272)",
    ),
    Case(
        50166,
        lambda i: i.minted(iss=i.unreachable),
        69,
        "Entra could not fetch the OIDC discovery document or keys of the issuer '{unreachable}' "
        "(AADSTS50166)",
    ),
    Case(
        500011,
        lambda i: ["--azure-scope", "https://api.unknown.example/.default"],
        78,
        "Entra refused the scope 'https://api.unknown.example/.default' (AADSTS500011",
    ),
]


@pytest.fixture(scope="module")
def legacy_entra(assertion_issuer: OidcIssuer) -> Iterator[EntraEmulator]:
    """Entra as it answered before it split federated-credential mismatches by claim."""
    emulator = EntraEmulator(
        sandbox_directory([(assertion_issuer.url, OWN_SUBJECT)]), legacy_fic_errors=True
    ).start()
    yield emulator
    emulator.stop()


@pytest.mark.parametrize("case", CASES, ids=[f"AADSTS{c.code}" for c in CASES])
def test_each_entra_refusal_names_what_to_fix_and_the_command_never_starts(
    case: Case,
    github_env: dict[str, str],
    entra: EntraEmulator,
    legacy_entra: EntraEmulator,
    assertion_issuer: OidcIssuer,
    unreachable_issuer: str,
    tmp_path: Path,
) -> None:
    emulator = legacy_entra if case.legacy else entra
    env = github_env | {
        "AZURE_AUTHORITY_HOST": emulator.url,
        "NHI_AZURE_CA_BUNDLE": emulator.ca_file,
    }
    issuers = Issuers(assertion_issuer, unreachable_issuer, tmp_path)
    marker = tmp_path / "the-command-ran"
    seen_before = len(emulator.requests())
    given = case.args(issuers)
    args = [*_client(SANDBOX_CLIENT_ID), *given]
    result = run_nhi(
        [
            "run",
            "--step-id",
            "deploy",
            *args,
            "--",
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w')",
        ],
        env,
    )
    expected = case.message.format(own=assertion_issuer.url, unreachable=unreachable_issuer)
    assert result.code == case.exit_code, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("nhi-invoke: error: ")
    assert expected in line
    assert not marker.exists()
    events = ledger_events(env)
    assert not [e for e in events if e["event"] == "credential.issued"]
    (error,) = [e for e in events if e["event"] == "error"]
    assert error["exit_code"] == case.exit_code
    answered = [c for r in emulator.requests()[seen_before:] for c in r.error_codes]
    assert answered == [case.code]

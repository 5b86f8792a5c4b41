"""The Entra emulator as part of `nhi-invoke sandbox`'s emulators: started on request, with
the sandbox's own issuer trusted, and kept off the start when nobody asks for Azure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from azure.identity import ClientAssertionCredential

from nhi_invoke.sandbox.emulators import Emulators
from nhi_invoke.sandbox.entra_directory import DEFAULT_AUDIENCE

pytestmark = pytest.mark.e2e


def test_the_sandbox_emulators_start_entra_when_asked() -> None:
    with Emulators(os.environ, also={"azure": "nhi_invoke.sandbox.azure_emulator"}) as emulators:
        info = emulators.describe()
        credential = ClientAssertionCredential(
            info["azure_tenant_id"],
            info["azure_client_id"],
            lambda: emulators.issuer.mint(info["azure_audience"]),
            authority=info["azure_authority_host"],
            connection_verify=info["azure_ca_file"],
        )
        token = credential.get_token("https://management.azure.com/.default").token
        ca_file = Path(info["azure_ca_file"])
        assert ca_file.exists()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["appid"] == info["azure_client_id"]
    assert info["azure_audience"] == DEFAULT_AUDIENCE
    assert not ca_file.exists()


def test_the_sandbox_loads_nothing_of_azure_unless_asked() -> None:
    # `nhi-invoke sandbox -- CMD` (the first broker's identity) starts only its emulator.
    probe = (
        "import json, os, sys\n"
        "from nhi_invoke.sandbox.emulators import Emulators\n"
        "emulators = Emulators(os.environ, only=('aws',))\n"
        "assert list(emulators.emulators) == ['aws'], emulators.emulators\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "nhi_invoke.sandbox.emulators" in loaded
    assert not loaded & {
        "nhi_invoke.sandbox.azure",
        "nhi_invoke.sandbox.tls",
        "nhi_invoke.sandbox.entra_directory",
        "azure",
    }

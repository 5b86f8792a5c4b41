"""A step's command using azure-identity as user code does: it builds the credential named on
the command line from the environment alone, gets a token for a scope, proves it against the
Entra emulator's /__sandbox/whoami when asked, and prints a JSON report. Never the token."""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import sys
import urllib.request
from typing import Any


def credential(kind: str, client_id: str | None) -> Any:
    from azure import identity  # noqa: PLC0415 - the report must come out even if this fails

    if kind == "workload":
        return identity.WorkloadIdentityCredential()
    if kind == "managed":
        return identity.ManagedIdentityCredential(client_id=client_id)
    if kind == "default":
        return identity.DefaultAzureCredential()
    raise SystemExit(f"unknown credential {kind}")


def unverified_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def whoami(url: str, token: str) -> Any:
    context = ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE"))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    with opener.open(request, timeout=10) as response:
        return json.load(response)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("credential", choices=["workload", "managed", "default"])
    parser.add_argument("scope")
    parser.add_argument("--client-id")
    parser.add_argument("--whoami", help="the emulator's /__sandbox/whoami URL")
    parser.add_argument("--times", type=int, default=1, help="get_token calls to make")
    args = parser.parse_args()
    report: dict[str, Any] = {"credential": args.credential}
    try:
        chosen = credential(args.credential, args.client_id)
        for _ in range(args.times):
            token = chosen.get_token(args.scope)
        report |= {"ok": True, "expires_on": token.expires_on}
        report["claims"] = unverified_claims(token.token)
        if args.whoami:
            report["whoami"] = whoami(args.whoami, token.token)
        report["chain"] = [type(c).__name__ for c in getattr(chosen, "credentials", ())]
    except Exception as exc:  # the report says what failed; the test judges it
        report |= {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

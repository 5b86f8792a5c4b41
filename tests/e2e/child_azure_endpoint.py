"""A step's command that probes the managed-identity endpoint nhi-invoke gives it, as an
attacker in the step would, and then uses it as azure-identity does. Writes a JSON report to
the path given: fingerprints of what it got, and (for the leak sweep only, which then looks
for them in every output and file) the secrets themselves under "secrets".

probe REPORT: raw requests without the header, with a wrong one, for another identity, for a
resource that was not allowed, with another api-version; the folder AZURE_CONFIG_DIR names.
rotate REPORT SCOPE TOKEN_FILE NEXT_FILE: moves NEXT_FILE over TOKEN_FILE (the CI's next
OIDC token), then asks ManagedIdentityCredential for SCOPE.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ARM = "https://management.azure.com"


def fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


SEEN: list[str] = []  # every secret the endpoint handed over


def ask(query: dict[str, str], header: str | None) -> dict[str, Any]:
    url = os.environ["IDENTITY_ENDPOINT"] + "?" + urllib.parse.urlencode(query)
    headers = {"X-IDENTITY-HEADER": header} if header is not None else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=30) as answer:
            body = json.load(answer)
            SEEN.append(body["access_token"])
            return {
                "status": answer.status,
                "fields": sorted(body),
                "token_fp": fingerprint(body["access_token"]),
                "expires_on": body.get("expires_on"),
                "client_id": body.get("client_id"),
            }
    except urllib.error.HTTPError as refused:
        return {"status": refused.code, "body": json.loads(refused.read() or b"null")}


def probe() -> dict[str, Any]:
    header = os.environ["IDENTITY_HEADER"]
    good = {"api-version": "2019-08-01", "resource": ARM}
    config_dir = os.environ["AZURE_CONFIG_DIR"]
    return {
        "endpoint": os.environ["IDENTITY_ENDPOINT"],
        "header_fp": fingerprint(header),
        "names": sorted(os.environ),
        "values": {
            k: os.environ[k]
            for k in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_TOKEN_CREDENTIALS")
        },
        "config_dir": config_dir,
        "config_dir_mode": oct(stat.S_IMODE(os.stat(config_dir).st_mode)),
        "config_dir_entries": os.listdir(config_dir),
        "without_header": ask(good, None),
        "wrong_header": ask(good, header[:-1] + ("A" if header[-1] != "A" else "B")),
        "empty_header": ask(good, ""),
        "other_identity": ask(good | {"client_id": "00000000-0000-4000-8000-000000000000"}, header),
        "by_object_id": ask(good | {"object_id": "00000000-0000-4000-8000-000000000000"}, header),
        "other_resource": ask(good | {"resource": "https://vault.azure.net"}, header),
        "old_api_version": ask(good | {"api-version": "2017-09-01"}, header),
        "no_resource": ask({"api-version": "2019-08-01"}, header),
        "allowed": ask(good, header),
        "allowed_again": ask(good, header),
    }


def rotate(scope: str, token_file: str, next_file: str) -> dict[str, Any]:
    from azure.identity import ManagedIdentityCredential  # noqa: PLC0415

    os.replace(next_file, token_file)  # the CI's next token, as a rotated file
    token = ManagedIdentityCredential().get_token(scope)
    SEEN.append(token.token)
    return {"token_fp": fingerprint(token.token), "expires_on": token.expires_on}


def main() -> int:
    mode, report_path = sys.argv[1], sys.argv[2]
    report = probe() if mode == "probe" else rotate(*sys.argv[3:6])
    report["secrets"] = [os.environ["IDENTITY_HEADER"], *SEEN]
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Floor: the AWS exchange with Python's standard library and nothing else.

urllib fetches the GitHub OIDC token, one form POST to STS calls AssumeRoleWithWebIdentity
(`xml.etree` reads the answer), and, with --chained, a second POST calls AssumeRole signed
with SigV4 (hashlib and hmac); then `true` is spawned with the credentials. No checks, no
ledger, no cleanup: what a Python tool cannot go below.
"""

import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

NS = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/"}
chained = sys.argv[1:] == ["--chained"]
target, entry = os.environ["BENCH_TARGET_ROLE"], os.environ["BENCH_ENTRY_ROLE"]
sts = os.environ["AWS_ENDPOINT_URL_STS"]
url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=sts.amazonaws.com"
request = urllib.request.Request(
    url, headers={"Authorization": "bearer " + os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]}
)
with urllib.request.urlopen(request) as answer:
    token = json.load(answer)["value"]


def post(fields: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, str]:
    body = urllib.parse.urlencode(fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    with urllib.request.urlopen(urllib.request.Request(sts, body, headers)) as answer:
        found = ET.fromstring(answer.read()).find(".//sts:Credentials", NS)  # noqa: S314 - our STS
    assert found is not None
    return {child.tag.split("}")[1]: child.text or "" for child in found}


def signed(fields: dict[str, str], creds: dict[str, str]) -> dict[str, str]:
    """SigV4 headers for a form POST to STS in us-east-1."""
    body = urllib.parse.urlencode(fields).encode()
    now = datetime.datetime.now(datetime.UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host = urllib.parse.urlsplit(sts).netloc
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "host": host,
        "x-amz-date": stamp,
        "x-amz-security-token": creds["SessionToken"],
    }
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            *(f"{k}:{headers[k]}" for k in sorted(headers)),
            "",
            names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/us-east-1/sts/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"
    key = ("AWS4" + creds["SecretAccessKey"]).encode()
    for part in (day, "us-east-1", "sts", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    del headers["host"]
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds['AccessKeyId']}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return headers


creds = post(
    {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": entry if chained else target,
        "RoleSessionName": "floor",
        "WebIdentityToken": token,
    }
)
if chained:
    fields = {
        "Action": "AssumeRole",
        "Version": "2011-06-15",
        "RoleArn": target,
        "RoleSessionName": "floor",
    }
    creds = post(fields, signed(fields, creds))
env = dict(
    os.environ,
    AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
    AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
    AWS_SESSION_TOKEN=creds["SessionToken"],
)
sys.exit(subprocess.call(["true"], env=env))

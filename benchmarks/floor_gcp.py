"""Floor: the GCP exchange with Python's standard library and nothing else.

urllib fetches the GitHub OIDC token for the provider's audience, one form POST to GCP STS
exchanges it, one JSON POST to IAM Credentials' generateAccessToken impersonates the service
account; then `true` is spawned with the access token. No checks, no ledger: what a Python
tool cannot go below.
"""

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

provider, account = os.environ["BENCH_GCP_PROVIDER"], os.environ["BENCH_GCP_ACCOUNT"]
sts = os.environ["NHI_GCP_STS_ENDPOINT"]
iam = os.environ["NHI_GCP_IAMCREDENTIALS_ENDPOINT"]
scope = "https://www.googleapis.com/auth/cloud-platform"
url = (
    os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=https://iam.googleapis.com/" + provider
)
request = urllib.request.Request(
    url, headers={"Authorization": "bearer " + os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]}
)
with urllib.request.urlopen(request) as answer:
    token = json.load(answer)["value"]
form = {
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "audience": f"//iam.googleapis.com/{provider}",
    "scope": scope,
    "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
    "subject_token": token,
    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
}
exchange = urllib.request.Request(
    f"{sts}/v1/token",
    urllib.parse.urlencode(form).encode(),
    {"Content-Type": "application/x-www-form-urlencoded"},
)
with urllib.request.urlopen(exchange) as answer:
    federated = json.load(answer)["access_token"]
impersonate = urllib.request.Request(
    f"{iam}/v1/projects/-/serviceAccounts/{account}:generateAccessToken",
    json.dumps({"delegates": [], "scope": [scope], "lifetime": "600s"}).encode(),
    {"Content-Type": "application/json", "Authorization": f"Bearer {federated}"},
)
with urllib.request.urlopen(impersonate) as answer:
    access = json.load(answer)["accessToken"]
sys.exit(subprocess.call(["true"], env=dict(os.environ, CLOUDSDK_AUTH_ACCESS_TOKEN=access)))

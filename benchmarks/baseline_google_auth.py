"""Baseline: the minimal google-auth path (its lighter urllib3 transport, nothing else).

Fetches the GitHub OIDC token for the provider's audience, exchanges it at STS and
impersonates the service account, then spawns the command with the access token.
"""

import json
import os
import subprocess
import sys
import urllib.request

import google.auth.transport.urllib3
import urllib3
from google.auth import identity_pool, impersonated_credentials

provider, account = os.environ["BENCH_GCP_PROVIDER"], os.environ["BENCH_GCP_ACCOUNT"]
base = os.environ["NHI_GCP_STS_ENDPOINT"]
url = (
    os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=https://iam.googleapis.com/" + provider
)
request = urllib.request.Request(
    url, headers={"Authorization": "bearer " + os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]}
)
with urllib.request.urlopen(request) as answer:
    token = json.load(answer)["value"]


class Subject(identity_pool.SubjectTokenSupplier):
    def get_subject_token(self, context, request):
        return token


scope = ["https://www.googleapis.com/auth/cloud-platform"]
transport = google.auth.transport.urllib3.Request(urllib3.PoolManager())
federated = identity_pool.Credentials(
    audience=f"//iam.googleapis.com/{provider}",
    subject_token_type="urn:ietf:params:oauth:token-type:jwt",
    token_url=f"{base}/v1/token",
    subject_token_supplier=Subject(),
    scopes=scope,
)
creds = impersonated_credentials.Credentials(
    source_credentials=federated,
    target_principal=account,
    target_scopes=scope,
    lifetime=600,
    iam_endpoint_override=f"{base}/v1/projects/-/serviceAccounts/{account}:generateAccessToken",
)
creds.refresh(transport)
sys.exit(subprocess.call(["true"], env=dict(os.environ, CLOUDSDK_AUTH_ACCESS_TOKEN=creds.token)))

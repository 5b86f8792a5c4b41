"""A step's command holding AWS, GCP and Azure identities at once, each proved the way its own
client finds it: boto3's GetCallerIdentity, the GCP emulator's tokeninfo for the gcloud
token, azure-identity's ManagedIdentityCredential against the Entra emulator's whoami.
Writes a JSON report to the path given: the identities, and (for the leak sweep only, which
then looks for them in every output and file) the credentials it was given. The emulator is
the one AZURE_AUTHORITY_HOST names, its CA REQUESTS_CA_BUNDLE's (or the sandbox's variable)."""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.parse
import urllib.request

import boto3
from azure.identity import ManagedIdentityCredential

report_path = sys.argv[1]
whoami_url = os.environ["AZURE_AUTHORITY_HOST"] + "/__sandbox/whoami"
ca_file = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ["NHI_AZURE_CA_BUNDLE"]
aws = boto3.client("sts").get_caller_identity()["Arn"]
query = urllib.parse.urlencode({"access_token": os.environ["CLOUDSDK_AUTH_ACCESS_TOKEN"]})
plain = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with plain.open(f"{os.environ['NHI_GCP_STS_ENDPOINT']}/tokeninfo?{query}", timeout=30) as answer:
    gcp = json.load(answer)["email"]
token = ManagedIdentityCredential().get_token("https://management.azure.com/.default").token
tls = ssl.create_default_context(cafile=ca_file)
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
)
request = urllib.request.Request(whoami_url, headers={"Authorization": "Bearer " + token})
with opener.open(request, timeout=30) as answer:
    azure = json.load(answer)["claims"]
report = {
    "aws": aws,
    "gcp": gcp,
    "azure": {"appid": azure["appid"], "uti": azure["uti"]},
    "invocation": os.environ["NHI_INVOCATION_ID"],
    "secrets": [
        os.environ["AWS_SECRET_ACCESS_KEY"],
        os.environ["AWS_SESSION_TOKEN"],
        os.environ["CLOUDSDK_AUTH_ACCESS_TOKEN"],
        os.environ["IDENTITY_HEADER"],
        token,
    ],
}
with open(report_path, "w", encoding="utf-8") as handle:
    json.dump(report, handle)

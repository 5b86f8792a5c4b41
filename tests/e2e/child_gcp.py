"""A child command that proves its GCP identity: it asks the emulator's tokeninfo about the
access token nhi-invoke put in its environment, and writes what it learned to a report."""

import json
import os
import sys
import urllib.parse
import urllib.request

report_path = sys.argv[1]
token = os.environ["CLOUDSDK_AUTH_ACCESS_TOKEN"]
query = urllib.parse.urlencode({"access_token": token})
endpoint = os.environ["NHI_GCP_STS_ENDPOINT"]
with urllib.request.urlopen(f"{endpoint}/tokeninfo?{query}") as answer:
    info = json.load(answer)
report = {
    "tokeninfo": info,
    "names": sorted(os.environ),
    "same_token": os.environ.get("GOOGLE_OAUTH_ACCESS_TOKEN") == token,
    "secrets": [token],
}
if "AWS_SESSION_TOKEN" in os.environ:
    import boto3

    report["aws_arn"] = boto3.client("sts").get_caller_identity()["Arn"]
    report["secrets"] += [os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["AWS_SESSION_TOKEN"]]
with open(report_path, "w", encoding="utf-8") as handle:
    json.dump(report, handle)
print("child: gcp identity", info.get("email") or info.get("sub"))

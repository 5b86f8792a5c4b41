"""A child for `--serve`: proves it gets refreshing credentials from the endpoints alone.

aws: calls GetCallerIdentity N times, PAUSE seconds apart, with boto3 reading only the
container-credentials variables; records each call's ARN and access key id, and what the
endpoint answers without its token or with a wrong one.
gcp: google.auth.default() through GCE_METADATA_HOST; refreshes N times, PAUSE apart, and asks
the emulator's tokeninfo about each token.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

mode, report_path, count, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
report = {"names": sorted(os.environ), "calls": []}


def status_of(request):
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


if mode == "aws":
    import boto3

    uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    report["uri"] = uri
    report["without_token"] = status_of(urllib.request.Request(uri))
    report["wrong_token"] = status_of(urllib.request.Request(uri, headers={"Authorization": "x"}))
    report["wrong_path"] = status_of(urllib.request.Request(uri.rsplit("/", 2)[0] + "/x/aws"))
    sts = boto3.client("sts")
    for _ in range(count):
        identity = sts.get_caller_identity()
        key = sts._request_signer._credentials.get_frozen_credentials().access_key
        report["calls"].append({"arn": identity["Arn"], "key": key})
        time.sleep(pause)
else:
    import google.auth
    import google.auth.transport.requests

    credentials, project = google.auth.default()
    report["project"] = project
    request = google.auth.transport.requests.Request()
    host = os.environ["GCE_METADATA_HOST"]
    report["without_flavor"] = status_of(
        urllib.request.Request(
            f"http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
        )
    )
    for _ in range(count):
        credentials.refresh(request)
        query = urllib.parse.urlencode({"access_token": credentials.token})
        with urllib.request.urlopen(f"{os.environ['NHI_GCP_STS_ENDPOINT']}/tokeninfo?{query}") as a:
            info = json.load(a)
        report["calls"].append({"email": info["email"], "token_fp": hash(credentials.token)})
        time.sleep(pause)
# The endpoint's address and token are secrets (masked on GitHub): this report holds them.
served = (
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "GCE_METADATA_HOST",
)
report["secrets"] = [os.environ[name] for name in served if name in os.environ]
with open(report_path, "w", encoding="utf-8") as handle:
    json.dump(report, handle)

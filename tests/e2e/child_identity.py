"""The child command of the end-to-end tests: proves which identity it holds.

It calls STS GetCallerIdentity with boto3 using only what nhi-invoke put in its environment,
and writes a report: the ARN, the names of the variables it saw, and (for the test's leak
check only) the secret values it was given.
"""

import json
import os
import sys

import boto3

report_path = sys.argv[1]
identity = boto3.client("sts").get_caller_identity()
report = {
    "arn": identity["Arn"],
    "user_id": identity["UserId"],
    "names": sorted(os.environ),
    "values": {
        k: os.environ[k]
        for k in (
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_SDK_UA_APP_ID",
            "AWS_CREDENTIAL_EXPIRATION",
            "AWS_ACCESS_KEY_ID",
            "NHI_INVOCATION_ID",
            "NHI_STEP_ID",
            "NHI_INVOKE_ACTIVE",
        )
        if k in os.environ
    },
    "secrets": [os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["AWS_SESSION_TOKEN"]],
}
with open(report_path, "w", encoding="utf-8") as handle:
    json.dump(report, handle)
print("child: identity", identity["Arn"])

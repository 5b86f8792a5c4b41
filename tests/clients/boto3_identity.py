"""boto3 as a step's command: which identity does its default credential chain give it?

Prints one JSON line: the caller's ARN, the access key id it signed with (never the secret)
and where botocore found the credentials (`env`, `shared-credentials-file`,
`container-role`…). A failure prints the error as one JSON line and exits 1.
"""

import json
import sys

import boto3
import botocore.exceptions

session = boto3.Session()
try:
    identity = session.client("sts").get_caller_identity()
except botocore.exceptions.BotoCoreError as error:
    print(json.dumps({"client": "boto3", "error": f"{type(error).__name__}: {error}"}))
    sys.exit(1)
credentials = session.get_credentials()
assert credentials is not None  # the call above succeeded with them
print(
    json.dumps(
        {
            "client": "boto3",
            "arn": identity["Arn"],
            "access_key_id": credentials.get_frozen_credentials().access_key,
            "source": credentials.method,
        }
    )
)

"""Baseline: the minimal hand-written path with urllib + boto3.

Fetches the GitHub OIDC token, calls AssumeRoleWithWebIdentity (and, with --chained, AssumeRole
into the target), and spawns the command with the credentials: what nhi-invoke does, with
nothing else (no checks, no ledger, no cleanup).
"""

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

import boto3

chained = sys.argv[1] == "--chained"
target, entry = os.environ["BENCH_TARGET_ROLE"], os.environ["BENCH_ENTRY_ROLE"]
url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=sts.amazonaws.com"
request = urllib.request.Request(
    url, headers={"Authorization": "bearer " + os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]}
)
with urllib.request.urlopen(request) as answer:
    token = json.load(answer)["value"]
sts = boto3.client("sts", region_name="us-east-1")
creds = sts.assume_role_with_web_identity(
    RoleArn=entry if chained else target, RoleSessionName="baseline", WebIdentityToken=token
)["Credentials"]
if chained:
    creds = boto3.client(
        "sts",
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).assume_role(RoleArn=target, RoleSessionName="baseline")["Credentials"]
env = dict(
    os.environ,
    AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
    AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
    AWS_SESSION_TOKEN=creds["SessionToken"],
)
sys.exit(subprocess.call(["true"], env=env))

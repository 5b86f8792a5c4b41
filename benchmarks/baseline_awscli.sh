#!/usr/bin/env bash
# Baseline: the AWS CLI path a user would otherwise script in a step.
set -euo pipefail
token=$(curl -s -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
  "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=sts.amazonaws.com" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
read -r key secret session < <(aws sts assume-role-with-web-identity --role-arn "$BENCH_TARGET_ROLE" \
  --role-session-name baseline --web-identity-token "$token" \
  --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_SESSION_TOKEN=$session true

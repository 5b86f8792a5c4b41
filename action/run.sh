#!/usr/bin/env bash
# Runs the step's script under nhi-invoke, which publishes the (non-secret) outputs itself
# from its own memory once the script has ended (run --step-outputs): nothing is read back
# from a file the script could have written.
set -euo pipefail

if [[ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" || -z "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ]]; then
  echo "::error title=nhi-invoke::this job may not request OIDC tokens: add 'permissions: id-token: write' to the job"
  exit 78
fi
if [[ -z "${NHI_STEP_ID:-}" ]]; then
  # A composite action cannot see its caller's step id; the job id is the next best name.
  NHI_STEP_ID="$GITHUB_JOB"
  echo "::notice title=nhi-invoke::no step-id input: the session is named after the job '$GITHUB_JOB'"
fi
export NHI_STEP_ID
# aws-revoke's default ("false") is the action's, not the caller's: a step without an AWS role
# would otherwise be refused for an AWS option given without --aws-role-arn.
if [[ -z "${NHI_AWS_ROLE_ARN:-}" && "${NHI_AWS_REVOKE:-}" == false ]]; then
  unset NHI_AWS_REVOKE
fi
export NHI_LEDGER="${NHI_LEDGER:-$RUNNER_TEMP/nhi-invoke/ledger.jsonl}"

args=(run --step-outputs)
while IFS= read -r tag; do
  [[ -n "${tag//[[:space:]]/}" ]] && args+=(--tag "$tag")
done <<< "${NHI_SESSION_TAGS:-}"
while IFS= read -r scope; do
  [[ -n "${scope//[[:space:]]/}" ]] && args+=(--gcp-scope "$scope")
done <<< "${NHI_GCP_SCOPES:-}"

exec "$NHI_BIN" "${args[@]}" -- "$NHI_SHELL" -c "$NHI_SCRIPT"

#!/usr/bin/env bash
# Runs the step's script under nhi-invoke and publishes the (non-secret) outputs.
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
export NHI_LEDGER="${NHI_LEDGER:-$RUNNER_TEMP/nhi-invoke/ledger.jsonl}"

args=(run)
while IFS= read -r tag; do
  [[ -n "${tag//[[:space:]]/}" ]] && args+=(--tag "$tag")
done <<< "${NHI_SESSION_TAGS:-}"
while IFS= read -r scope; do
  [[ -n "${scope//[[:space:]]/}" ]] && args+=(--gcp-scope "$scope")
done <<< "${NHI_GCP_SCOPES:-}"

# Only this run's lines count for the outputs (earlier steps of the job share the ledger).
lines_before=0
if [[ -f "$NHI_LEDGER" ]]; then lines_before=$(wc -l < "$NHI_LEDGER"); fi
export NHI_LINES_BEFORE="$lines_before"

set +e
"$NHI_BIN" "${args[@]}" -- "$NHI_SHELL" -c "$NHI_SCRIPT"
code=$?
set -e

# The outputs: names only, read back from this run's ledger lines (through nhi-invoke's own
# ledger reader, so the action and `audit show` read the same records).
"$NHI_PYTHON" - <<'PY' >> "$GITHUB_OUTPUT"
import os
from nhi_invoke.ledger import history, store
from nhi_invoke.ledger.records import CredentialIssued

path, before = os.environ["NHI_LEDGER"], int(os.environ["NHI_LINES_BEFORE"])
entries = [e for e in store.read(path) if e.number > before] if os.path.exists(path) else []
runs = history.invocations(entries)
child = {
    e.record.broker: e.record.principal
    for e in entries
    if isinstance(e.record, CredentialIssued) and e.record.purpose == "child"
}
print(f"invocation-id={runs[0].invocation_id if runs else ''}")
print(f"aws-principal-arn={child.get('aws', '')}")
print(f"gcp-service-account={child.get('gcp', '')}")
print(f"ledger-path={path}")
PY
exit "$code"

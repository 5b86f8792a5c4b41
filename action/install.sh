#!/usr/bin/env bash
# Installs nhi-invoke from the action's own checkout into a virtual environment of its own,
# once per job and action checkout (later steps using the same action reuse it).
#
# Exactly what was reviewed: every dependency comes from action/requirements.lock, pinned by
# hash (--require-hashes) and installed as wheels only, so nothing outside the lock is fetched
# and no package's build code runs; nhi-invoke itself is built from this checkout with the
# locked setuptools (no build isolation, no index). Regenerate the lock with the command in
# its header (docs/threat-model.md). The environment is then made read-only, so that no later
# step writes to it by accident; a hostile command running as the job's user can undo that,
# as it can change the runner's tool cache: the job is GitHub's trust boundary.
set -euo pipefail
lock="$GITHUB_ACTION_PATH/action/requirements.lock"
key=$("$NHI_SETUP_PYTHON" -c '
import hashlib, sys
digest = hashlib.sha256(sys.argv[1].encode() + b"\0" + open(sys.argv[2], "rb").read())
print(digest.hexdigest()[:16])' "$GITHUB_ACTION_PATH" "$lock")
venv="$RUNNER_TEMP/nhi-invoke-venv-$key"
if [[ ! -x "$venv/bin/nhi-invoke" ]]; then
  if [[ -e "$venv" ]]; then chmod -R u+w "$venv" && rm -rf "$venv"; fi # a half-made one
  "$NHI_SETUP_PYTHON" -m venv "$venv"
  pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
  "${pip[@]}" install --require-hashes --no-deps --only-binary :all: -r "$lock"
  "${pip[@]}" install --no-deps --no-build-isolation --no-index "$GITHUB_ACTION_PATH"
  "${pip[@]}" check
  chmod -R a-w "$venv"
fi
{
  echo "bin=$venv/bin/nhi-invoke"
  echo "python=$venv/bin/python"
} >> "$GITHUB_OUTPUT"

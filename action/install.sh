#!/usr/bin/env bash
# Installs nhi-invoke from the action's own checkout into a virtual environment of its own,
# once per job (later steps using the action reuse it).
set -euo pipefail
venv="$RUNNER_TEMP/nhi-invoke-venv"
if [[ ! -x "$venv/bin/nhi-invoke" ]]; then
  "$NHI_SETUP_PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$GITHUB_ACTION_PATH"
fi
{
  echo "bin=$venv/bin/nhi-invoke"
  echo "python=$venv/bin/python"
} >> "$GITHUB_OUTPUT"

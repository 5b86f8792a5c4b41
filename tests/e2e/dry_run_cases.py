"""`nhi-invoke run --dry-run --json` for many cases in one process (starting one process per
case would take minutes): the command's own entry point, called once per case with the
case's environment, its output captured.

    python dry_run_cases.py < cases.json

Reads a JSON list of {"args": [...], "environ": {...}} (each environ replaces the process
environment for its case) and prints a JSON list of {"code", "stdout", "stderr"}.
"""

import contextlib
import io
import json
import os
import sys

from nhi_invoke.cli.app import main

base = dict(os.environ)
results = []
for case in json.load(sys.stdin):
    os.environ.clear()
    os.environ.update(base | case["environ"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(case["args"])
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
os.environ.clear()
os.environ.update(base)
print(json.dumps(results))

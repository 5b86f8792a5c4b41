"""A step's command that uses the Vault token and secrets it was given, the way a tool would
(the bao CLI, psql), and reports what it saw.

    child_vault.py REPORT ACTION...

Actions, in order: `lookup` (bao token lookup), `kv:PATH` (bao kv get), `psql` (connect as
$PGUSER with $PGPASSWORD), `touch:FILE`, `wait:FILE` (until it exists), `sleep:SECONDS`,
`every:SECONDS:TOTAL` (bao token lookup every SECONDS for TOTAL seconds), `pid:FILE` (write
the pid, then wait to be killed), `exit:N`, `call:METHOD:PATH[:JSON]` (the HTTP API with
the token, as any client). The report lists the token and the secret values under "secrets"
(so the end-to-end leak sweep looks for them everywhere else) and holds the results.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

BAO = os.environ.get("NHI_TEST_BAO", "bao")
PSQL = os.environ.get("NHI_TEST_PSQL", "psql")
SECRET_NAMES = (
    "VAULT_TOKEN", "BAO_TOKEN", "PGPASSWORD", "DEPLOY_KEY", "DEPLOY_API_KEY", "LEGACY_PASSWORD",
)  # fmt: skip


def bao(*args: str) -> dict[str, object]:
    done = subprocess.run([BAO, *args], capture_output=True, text=True, timeout=60, check=False)
    try:
        data = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        data = None
    return {"code": done.returncode, "data": data, "stderr": done.stderr[-600:]}


def psql() -> dict[str, object]:
    done = subprocess.run(
        [PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c",
         "SELECT current_user, count(*) FROM deploy_targets"],
        capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ, PGCONNECT_TIMEOUT="10"),
    )  # fmt: skip
    return {"code": done.returncode, "stdout": done.stdout.strip(), "stderr": done.stderr[-400:]}


def call(method: str, path: str, body: str | None) -> dict[str, object]:
    request = urllib.request.Request(
        f"{os.environ['VAULT_ADDR']}/v1/{path}",
        data=body.encode() if body else None,
        method=method,
        headers={"X-Vault-Token": os.environ.get("VAULT_TOKEN", "")},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return {"status": status, "body": json.loads(text) if text.strip() else None}


def wait_for(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def every(arg: str) -> list[object]:
    period, _, total = arg.partition(":")
    end, found = time.monotonic() + float(total), []
    while time.monotonic() < end:
        found.append({"at": time.time(), **bao("token", "lookup", "-format=json")})
        time.sleep(float(period))
    return found


def api_call(arg: str) -> dict[str, object]:
    method, _, rest = arg.partition(":")
    path, _, body = rest.partition(":")
    return call(method, path, body or None)


# Actions that report a result, and those that only act.
RESULTS = {
    "lookup": lambda arg: bao("token", "lookup", "-format=json"),
    "kv": lambda arg: bao("kv", "get", "-format=json", arg),
    "psql": lambda arg: psql(),
    "call": api_call,
}
ACTS = {
    "touch": lambda arg: open(arg, "w").close(),
    "wait": wait_for,
    "sleep": lambda arg: time.sleep(float(arg)),
}


def main() -> None:
    report_path, actions = sys.argv[1], sys.argv[2:]
    # More secret variables to report, named by the test.
    names = (*SECRET_NAMES, *filter(None, os.environ.get("NHI_TEST_SECRETS", "").split(",")))
    results: list[object] = []
    report = {
        "names": sorted(os.environ),
        "values": {n: os.environ[n] for n in names if n in os.environ},
        "addr": {n: os.environ.get(n) for n in ("VAULT_ADDR", "BAO_ADDR", "VAULT_NAMESPACE")},
        "secrets": [os.environ[n] for n in names if os.environ.get(n)],
        "results": results,
    }

    def save() -> None:
        with open(report_path + ".tmp", "w") as handle:
            json.dump(report, handle)
        os.replace(report_path + ".tmp", report_path)

    for action in actions:
        name, _, arg = action.partition(":")
        if name in RESULTS:
            results.append(RESULTS[name](arg))
        elif name in ACTS:
            ACTS[name](arg)
        elif name == "every":
            results.extend(every(arg))
        elif name == "pid":
            save()
            with open(arg, "w") as ready:
                ready.write(str(os.getpid()))
            time.sleep(300)
        elif name == "exit":
            save()
            sys.exit(int(arg))
        save()
    save()


main()

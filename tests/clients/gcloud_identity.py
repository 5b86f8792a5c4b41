"""gcloud as a step's command: which token does `gcloud auth print-access-token` give it?

    python gcloud_identity.py GCLOUD_EXECUTABLE TOKENINFO_BASE_URL

Prints one JSON line: the token's SHA-256 fingerprint (the ledger's form; never the token),
the email the emulator's tokeninfo says it belongs to, what `gcloud config list` says
(account, project), or the first line of its error, and what `gcloud config config-helper`
(the helper other tools call for gcloud's credentials) says: its token's fingerprint and
its project, or the first line of its error. When no token is printed, it reports gcloud's
last error line and exits 1.
"""

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

gcloud, tokeninfo = sys.argv[1], sys.argv[2]
printed = subprocess.run(
    [gcloud, "auth", "print-access-token"], capture_output=True, text=True, check=False
)
listed = subprocess.run(
    [gcloud, "config", "list", "--format=json"], capture_output=True, text=True, check=False
)
helper = subprocess.run(
    [gcloud, "config", "config-helper", "--format=json"],
    capture_output=True,
    text=True,
    check=False,
)
report: dict[str, object] = {"client": "gcloud"}
if helper.returncode == 0:
    helped = json.loads(helper.stdout)
    helper_token = helped.get("credential", {}).get("access_token") or ""
    report["helper"] = {
        "token_fingerprint": "sha256:" + hashlib.sha256(helper_token.encode()).hexdigest(),
        "project": helped.get("configuration", {})
        .get("properties", {})
        .get("core", {})
        .get("project"),
    }
else:
    report["helper_error"] = (helper.stderr.strip().splitlines() or ["(no output)"])[0]
if listed.returncode == 0:
    report["config"] = json.loads(listed.stdout).get("core", {})
else:  # e.g. a crash asking a metadata server for the project
    report["config_error"] = (listed.stderr.strip().splitlines() or ["(no output)"])[0]
if printed.returncode != 0:
    report["error"] = (printed.stderr.strip().splitlines() or ["(no output)"])[-1]
    print(json.dumps(report))
    sys.exit(1)
token = printed.stdout.strip()
report["token_fingerprint"] = "sha256:" + hashlib.sha256(token.encode()).hexdigest()
query = urllib.parse.urlencode({"access_token": token})
try:
    with urllib.request.urlopen(f"{tokeninfo}/tokeninfo?{query}", timeout=10) as answer:
        report["email"] = json.load(answer).get("email")
except urllib.error.HTTPError as error:
    report["email"] = None
    report["tokeninfo_status"] = error.code
print(json.dumps(report))

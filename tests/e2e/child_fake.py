"""A child that uses the fake broker's token the way a tool would, and reports what it saw.

    child_fake.py REPORT [READY]

With READY, it writes its pid there and waits to be killed (for crash tests).
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

report_path = sys.argv[1]
token = os.environ.get("FAKE_SECRET_TOKEN", "")
request = urllib.request.Request(
    os.environ["FAKE_SECRETS_URL"] + "/whoami", headers={"Authorization": f"Bearer {token}"}
)
try:
    with urllib.request.urlopen(request, timeout=10) as answer:
        status, body = answer.status, json.load(answer)
except urllib.error.HTTPError as refused:
    status, body = refused.code, {}
with open(report_path, "w") as handle:
    json.dump(
        {
            "status": status,
            "whoami": body,
            "names": sorted(n for n in os.environ if n.startswith("FAKE_")),
            "secrets": [token] if token else [],
        },
        handle,
    )
if len(sys.argv) > 2:
    with open(sys.argv[2], "w") as ready:
        ready.write(str(os.getpid()))
    time.sleep(300)

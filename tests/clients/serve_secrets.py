"""Run a step's command under --serve after reporting the endpoint's secrets to the
end-to-end secret-leak sweep (a JSON file with "secrets"): the random path of the loopback
host and the container endpoint's authorization token, which no output and no file may show.

    python serve_secrets.py REPORT_JSON COMMAND [ARG...]
"""

import json
import os
import sys
import urllib.parse

report, command = sys.argv[1], sys.argv[2:]
found = set()
token = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
if token:
    found.add(token)
for url in (
    os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", ""),
    "http://" + os.environ["GCE_METADATA_HOST"] if os.environ.get("GCE_METADATA_HOST") else "",
):
    path = urllib.parse.urlsplit(url).path.strip("/")
    if path:
        found.add(path.split("/")[0])  # /<secret path>/<broker>
with open(report, "w", encoding="utf-8") as handle:
    json.dump({"secrets": sorted(found)}, handle)
os.execvp(command[0], command)  # noqa: S606 - the step's command, as given

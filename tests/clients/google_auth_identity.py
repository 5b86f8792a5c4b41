"""google-auth's application default credentials as a step's command.

    python google_auth_identity.py [TOKENINFO_BASE_URL]

Prints one JSON line: the credentials class `google.auth.default()` chose, the project, and
the service account it names, if any. With a tokeninfo URL it also gets a token as a client
library does (refreshing only credentials that are not valid) and reports the token's
fingerprint and the email tokeninfo gives for it (never the token). A failure prints the
error as one JSON line and exits 1.
"""

import hashlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import google.auth
import google.auth.exceptions
import google.auth.transport.requests

report: dict[str, object] = {"client": "google-auth"}
try:
    credentials, project = google.auth.default()
    report |= {
        "credentials": f"{type(credentials).__module__}.{type(credentials).__name__}",
        "project": project,
        "service_account_email": getattr(credentials, "service_account_email", None),
    }
    if len(sys.argv) > 1:
        if not credentials.valid:
            credentials.refresh(google.auth.transport.requests.Request())
        token = str(credentials.token)
        report["token_fingerprint"] = "sha256:" + hashlib.sha256(token.encode()).hexdigest()
        query = urllib.parse.urlencode({"access_token": token})
        try:
            with urllib.request.urlopen(f"{sys.argv[1]}/tokeninfo?{query}", timeout=10) as answer:
                report["email"] = json.load(answer).get("email")
        except urllib.error.HTTPError as error:
            report["email"] = None
            report["tokeninfo_status"] = error.code
except google.auth.exceptions.GoogleAuthError as error:
    report["error"] = f"{type(error).__name__}: {error}"
    print(json.dumps(report))
    sys.exit(1)
print(json.dumps(report))

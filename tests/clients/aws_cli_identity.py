"""The AWS CLI as a step's command: `aws sts get-caller-identity`, and `aws configure list`
for where the CLI found its credentials.

    python aws_cli_identity.py AWS_EXECUTABLE

Prints one JSON line: the ARN, the last four characters of the access key id the CLI shows
(it masks the rest) and the credential type it reports (`env`, `shared-credentials-file`,
`container-role`…). A failure prints the CLI's last error line and exits 1.
"""

import json
import subprocess
import sys

aws = sys.argv[1]
called = subprocess.run(
    [aws, "sts", "get-caller-identity", "--output", "json"],
    capture_output=True,
    text=True,
    check=False,
)
if called.returncode != 0:
    last = (called.stderr.strip().splitlines() or ["(no output)"])[-1]
    print(json.dumps({"client": "aws-cli", "error": last, "code": called.returncode}))
    sys.exit(1)
listed = subprocess.run(
    [aws, "configure", "list"], capture_output=True, text=True, check=True
).stdout
# "access_key     ****************ABCD              env    " (value, type, location)
rows = [line.split() for line in listed.splitlines()]
access_key = next(row for row in rows if row[:1] == ["access_key"])
print(
    json.dumps(
        {
            "client": "aws-cli",
            "arn": json.loads(called.stdout)["Arn"],
            "access_key_suffix": access_key[1].lstrip("*"),
            "source": access_key[2],
        }
    )
)

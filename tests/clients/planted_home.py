"""A runner's home that already holds long-lived credentials, as self-hosted runners and
developer machines do: what every client's default chain finds if nothing shadows it.

- `~/.aws/credentials`: the access key of a long-lived IAM user (created in moto, so that
  calling with it names that user).
- `~/.config/gcloud/application_default_credentials.json`: an authorised-user ADC file, as
  `gcloud auth application-default login` writes, holding an access token valid for years
  (google-auth always refreshes such a file at Google's own token endpoint, so the planted
  token keeps a client that picks this file from ever refreshing it).
- `~/.config/gcloud`: an active gcloud account with a stored service-account key
  (`credentials.db`, the table `gcloud auth activate-service-account` fills; planted directly
  because activating one asks Google for a token), and `gce` = False so gcloud never probes
  metadata.google.internal.

The gcloud account refreshes at `oauth2.nhi-test.invalid`, which resolves nowhere: gcloud
fails at once when it uses it, without traffic off the machine.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

PLANTED_TOKEN_URI = "https://oauth2.nhi-test.invalid/token"
GCLOUD_ACCOUNT = "long-lived@runner-project.iam.gserviceaccount.com"
GCLOUD_PROJECT = "runner-project"
ADC_CLIENT_ID = "planted-adc.apps.googleusercontent.com"
ADC_TOKEN = "ya29.planted-long-lived-adc-token"


@dataclass(frozen=True)
class LongLivedAwsUser:
    """An IAM user and one of its access keys (test values of moto's)."""

    arn: str
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class PlantedHome:
    """What was planted where: the identities a client would wrongly end up with."""

    home: Path
    aws_user_arn: str
    aws_access_key_id: str
    gcloud_config: Path  # ~/.config/gcloud
    gcloud_account: str
    adc_file: Path
    adc_client_id: str
    adc_token_fingerprint: str


def _private_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)


def service_account_key(private_key_pem: str) -> dict[str, str]:
    """A service-account key file's contents for the planted gcloud account."""
    return {
        "type": "service_account",
        "project_id": GCLOUD_PROJECT,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": private_key_pem,
        "client_email": GCLOUD_ACCOUNT,
        "client_id": "100000000000000000001",
        "token_uri": PLANTED_TOKEN_URI,
    }


def plant(home: Path, aws_user: LongLivedAwsUser, private_key_pem: str) -> PlantedHome:
    """Write the long-lived credentials into `home`."""
    _private_file(
        home / ".aws" / "credentials",
        "[default]\n"
        f"aws_access_key_id = {aws_user.access_key_id}\n"
        f"aws_secret_access_key = {aws_user.secret_access_key}\n",
    )
    gcloud = home / ".config" / "gcloud"
    adc = gcloud / "application_default_credentials.json"
    _private_file(
        adc,
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": ADC_CLIENT_ID,
                "client_secret": "planted-client-secret",
                "refresh_token": "planted-refresh-token",
                "token": ADC_TOKEN,
                "expiry": "2099-01-01T00:00:00Z",
            }
        ),
    )
    _private_file(gcloud / "gce", "False")
    _private_file(gcloud / "active_config", "default")
    # No survey prompt, no update check, no usage report: nothing leaves the machine.
    _private_file(
        gcloud / "configurations" / "config_default",
        f"[core]\naccount = {GCLOUD_ACCOUNT}\nproject = {GCLOUD_PROJECT}\n"
        "disable_usage_reporting = true\n"
        "[component_manager]\ndisable_update_check = true\n"
        "[survey]\ndisable_prompts = true\n",
    )
    with sqlite3.connect(gcloud / "credentials.db") as db:
        db.execute(
            'CREATE TABLE IF NOT EXISTS "credentials" (account_id TEXT PRIMARY KEY, value BLOB)'
        )
        db.execute(
            "INSERT OR REPLACE INTO credentials VALUES (?, ?)",
            (GCLOUD_ACCOUNT, json.dumps(service_account_key(private_key_pem))),
        )
    db.close()
    return PlantedHome(
        home=home,
        aws_user_arn=aws_user.arn,
        aws_access_key_id=aws_user.access_key_id,
        gcloud_config=gcloud,
        gcloud_account=GCLOUD_ACCOUNT,
        adc_file=adc,
        adc_client_id=ADC_CLIENT_ID,
        adc_token_fingerprint="sha256:" + hashlib.sha256(ADC_TOKEN.encode()).hexdigest(),
    )

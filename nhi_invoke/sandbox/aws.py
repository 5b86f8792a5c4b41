"""The AWS emulator: moto's server for STS and IAM, with the OIDC provider and the roles a user
would create (an entry role trusted for the sandbox issuer, a target role trusting it)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

    from nhi_invoke.sandbox.emulators import SandboxRequest
    from nhi_invoke.sandbox.oidc_issuer import OidcIssuer

ENTRY_ROLE = "nhi-sandbox-entry"
TARGET_ROLE = "nhi-sandbox-deploy"


@dataclass(frozen=True)
class SandboxRoles:
    entry_role_arn: str
    target_role_arn: str
    oidc_provider_arn: str


def trust_policy_for_oidc(provider_arn: str, host: str, repository: str) -> dict[str, Any]:
    """The trust policy a user writes for GitHub: aud and sub pinned, tags allowed."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{host}:aud": "sts.amazonaws.com"},
                    "StringLike": {f"{host}:sub": f"repo:{repository}:*"},
                },
            }
        ],
    }


def trust_policy_for_entry(entry_role_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": entry_role_arn},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            }
        ],
    }


class MotoServer:
    """moto's server on 127.0.0.1 at a free port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - the sandbox extra

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto keeps its accounts in process-wide state: a second sandbox started in the same
        # process (the tests do) would find the first one's roles. Each starts empty.
        import urllib.request  # noqa: PLC0415

        reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(reset, timeout=10):  # noqa: S310 - loopback
            pass
        return self

    def stop(self) -> None:
        self._server.stop()

    def create_roles(self, issuer_url: str, repository: str) -> SandboxRoles:
        import botocore.session  # noqa: PLC0415

        session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        iam: IAMClient = session.create_client(  # type: ignore[assignment]
            "iam",
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )
        host = issuer_url.split("://", 1)[1]
        provider = iam.create_open_id_connect_provider(
            Url=issuer_url, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
        )["OpenIDConnectProviderArn"]
        oidc_trust = trust_policy_for_oidc(provider, host, repository)
        entry = iam.create_role(
            RoleName=ENTRY_ROLE, AssumeRolePolicyDocument=json.dumps(oidc_trust)
        )["Role"]["Arn"]
        target_trust = trust_policy_for_entry(entry)
        target_trust["Statement"] += oidc_trust["Statement"]
        target = iam.create_role(
            RoleName=TARGET_ROLE, AssumeRolePolicyDocument=json.dumps(target_trust)
        )["Role"]["Arn"]
        return SandboxRoles(
            entry_role_arn=entry, target_role_arn=target, oidc_provider_arn=provider
        )


class AwsEmulator:
    """moto with the sandbox's roles, trusting the sandbox's issuer and repository."""

    def __init__(self, issuer: OidcIssuer) -> None:
        self.issuer = issuer
        self.moto = MotoServer()
        self.roles: SandboxRoles | None = None

    def start(self) -> None:
        self.moto.start()
        self.roles = self.moto.create_roles(self.issuer.url, self.issuer.run.repository)

    def stop(self) -> None:
        self.moto.stop()

    def _roles(self) -> SandboxRoles:
        assert self.roles is not None, "start() first"
        return self.roles

    def environ(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_STS": self.moto.endpoint,
            "AWS_ENDPOINT_URL_IAM": self.moto.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def describe(self) -> dict[str, Any]:
        roles = self._roles()
        return {
            "aws_endpoint": self.moto.endpoint,
            "entry_role_arn": roles.entry_role_arn,
            "target_role_arn": roles.target_role_arn,
            "oidc_provider_arn": roles.oidc_provider_arn,
        }

    def announce(self) -> str:
        roles = self._roles()
        return (
            f"AWS STS + IAM (moto) at {self.moto.endpoint}, roles {roles.entry_role_arn} "
            f"(entry), {roles.target_role_arn} (target)"
        )

    def given(self, request: SandboxRequest) -> dict[str, Any]:
        roles = self._roles()
        return {
            "aws_role_arn": roles.target_role_arn,
            "aws_oidc_role_arn": roles.entry_role_arn if request.chained else None,
            "tags": request.tags,
        }


def create(issuer: OidcIssuer) -> AwsEmulator:
    return AwsEmulator(issuer)

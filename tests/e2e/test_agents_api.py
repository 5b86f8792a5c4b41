"""The Python API against the sandbox's clouds (moto's STS and IAM, the GCP emulator, the OIDC
issuer): per-task AWS sessions revoked when each task's block ends, why each ended in the
ledger, token files re-read, and the SDK objects a task's code uses."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

import nhi_invoke
from nhi_invoke import oidc
from nhi_invoke.sandbox.aws import trust_policy_for_entry
from nhi_invoke.sandbox.azure import EntraEmulator
from nhi_invoke.sandbox.entra_directory import (
    SANDBOX_CLIENT_ID,
    SANDBOX_OBJECT_ID,
    SANDBOX_TENANT_ID,
)
from tests.azure_fixtures import run_azure_child
from tests.e2e.agent_runtime import fetch_token, iam_enforced, runtime_environ, token_supplier
from tests.e2e.runs import deny_policies, iam_client, note_environment, note_input

pytestmark = pytest.mark.e2e
ALLOW_LIST_BUCKETS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
}
# What --aws-revoke needs of the entry role (moto checks it once IAM is enforced).
ALLOW_REVOKING = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies"],
            "Resource": "*",
        }
    ],
}


def _events(environ: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(environ["NHI_LEDGER"]).read_text().splitlines()]


def _of(environ: dict[str, str], invocation_id: str, event: str) -> list[dict[str, Any]]:
    return [
        e for e in _events(environ) if e["invocation_id"] == invocation_id and e["event"] == event
    ]


def _refused(client: Any) -> bool:
    try:
        client.list_buckets()
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"] == "AccessDenied"
    return False


def test_two_asyncio_tasks_get_their_own_sessions_and_each_end_denies_only_its_own(
    private_sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox = private_sandbox
    environ = runtime_environ(base_env, sandbox, tmp_path)
    iam = iam_client(sandbox)
    # moto evaluates no IAM condition: a deny on a role refuses every session of it there,
    # where AWS refuses only the one its aws:userid names. So each task gets a role of its
    # own, and the emulator can show one refused while the other works; that each deny names
    # exactly one session is checked on the policy documents below.
    second = iam.create_role(
        RoleName="nhi-agent-second",
        AssumeRolePolicyDocument=json.dumps(trust_policy_for_entry(sandbox["entry_role_arn"])),
    )["Role"]["Arn"]
    for role in ("nhi-sandbox-deploy", "nhi-agent-second"):
        iam.put_role_policy(
            RoleName=role, PolicyName="list", PolicyDocument=json.dumps(ALLOW_LIST_BUCKETS)
        )
    iam.put_role_policy(
        RoleName="nhi-sandbox-entry", PolicyName="revoke", PolicyDocument=json.dumps(ALLOW_REVOKING)
    )
    roles = {"case-a": sandbox["target_role_arn"], "case-b": second}
    opened = {name: asyncio.Event() for name in roles}
    end = {name: asyncio.Event() for name in roles}
    held: dict[str, tuple[nhi_invoke.Invocation, Any]] = {}

    async def task(name: str) -> None:
        async with nhi_invoke.invocation(
            task_id=name,
            agent="support-bot",
            aws_role_arn=roles[name],
            aws_oidc_role_arn=sandbox["entry_role_arn"],
            aws_revoke=True,
            token=token_supplier(sandbox),
            environ=environ,
        ) as inv:
            note_environment(inv.env)
            s3 = inv.boto3_session().client("s3", endpoint_url=sandbox["aws_endpoint"])
            held[name] = (inv, s3)
            opened[name].set()
            await end[name].wait()
            assert not await asyncio.to_thread(_refused, s3)  # still works until its end

    async def main() -> None:
        running = {name: asyncio.create_task(task(name)) for name in roles}
        for event in opened.values():
            await event.wait()
        a, b = held["case-a"][1], held["case-b"][1]
        with iam_enforced(sandbox):
            assert not await asyncio.to_thread(_refused, a)
            assert not await asyncio.to_thread(_refused, b)
            end["case-a"].set()
            await running["case-a"]
            assert await asyncio.to_thread(_refused, a)  # the first task's session: denied
            assert not await asyncio.to_thread(_refused, b)  # the second's still succeeds
            end["case-b"].set()
            await running["case-b"]
            assert await asyncio.to_thread(_refused, b)  # and then it is denied too

    try:
        asyncio.run(main())
    finally:
        for _, s3 in held.values():
            s3.close()
    (inv_a, _), (inv_b, _) = held["case-a"], held["case-b"]
    assert inv_a.principals["aws"].endswith(f"/case-a.support-bot.{inv_a.invocation_id}")
    assert inv_b.principals["aws"].split("/")[1] == "nhi-agent-second"
    for inv in (inv_a, inv_b):
        (issued,) = [
            e
            for e in _of(environ, inv.invocation_id, "credential.issued")
            if e["purpose"] == "child"
        ]
        assert issued["tags"]["nhi:agent"] == "support-bot"
        (revoked,) = _of(environ, inv.invocation_id, "credential.revoked")
        (exited,) = _of(environ, inv.invocation_id, "command.exited")
        assert exited["ended_by"] == "return"
        # Each deny names exactly its own session.
        role = issued["role_arn"].rsplit("/", 1)[1]
        assert deny_policies(sandbox, role)[revoked["policy_name"]] == issued["principal_id"]


@pytest.mark.parametrize("ending", ["exception", "cancelled"])
def test_an_exception_or_a_cancellation_revokes_the_session_and_records_why(
    ending: str, sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    environ = runtime_environ(base_env, sandbox, tmp_path)
    found: list[nhi_invoke.Invocation] = []

    async def task() -> None:
        async with nhi_invoke.invocation(
            task_id=f"case-{ending}",
            aws_role_arn=sandbox["target_role_arn"],
            aws_oidc_role_arn=sandbox["entry_role_arn"],
            aws_revoke=True,
            token=token_supplier(sandbox),
            environ=environ,
        ) as inv:
            found.append(inv)
            note_environment(inv.env)
            if ending == "exception":
                raise TimeoutError("the tool call took too long")
            await asyncio.sleep(60)

    async def main() -> None:
        running = asyncio.create_task(task())
        while not found:
            await asyncio.sleep(0.01)
        running.cancel()
        await running

    with pytest.raises(TimeoutError if ending == "exception" else asyncio.CancelledError):
        asyncio.run(main())
    (inv,) = found
    (exited,) = _of(environ, inv.invocation_id, "command.exited")
    assert exited["ended_by"] == ending
    assert exited.get("exception") == ("TimeoutError" if ending == "exception" else None)
    (revoked,) = _of(environ, inv.invocation_id, "credential.revoked")
    (issued,) = [
        e for e in _of(environ, inv.invocation_id, "credential.issued") if e["purpose"] == "child"
    ]
    assert deny_policies(sandbox)[revoked["policy_name"]] == issued["principal_id"]
    assert _of(environ, inv.invocation_id, "invocation.finished")[0]["exit_code"] == 1


def test_a_token_file_rewritten_between_two_invocations_is_read_again(
    sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    environ = runtime_environ(base_env, sandbox, tmp_path)
    token_file = tmp_path / "projected" / "token"  # as a kubelet projects a rotating token
    token_file.parent.mkdir()
    note_input(token_file)
    used = []
    for name in ("first", "second"):
        token = fetch_token(sandbox, "sts.amazonaws.com")
        token_file.write_text(token + "\n")
        with nhi_invoke.invocation(
            task_id=name,
            aws_role_arn=sandbox["target_role_arn"],
            token_file=token_file,
            environ=environ,
        ) as inv:
            note_environment(inv.env)
        (issued,) = _of(environ, inv.invocation_id, "credential.issued")
        assert issued["oidc"]["fingerprint"] == oidc.fingerprint(token)
        used.append(issued["oidc"]["claims"]["jti"])
        started = _of(environ, inv.invocation_id, "invocation.started")[0]
        assert started["token_source"] == f"token file {token_file}"
    assert used[0] != used[1]


def test_the_sdk_objects_act_as_the_task_and_nothing_else(
    sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    environ = runtime_environ(base_env, sandbox, tmp_path)
    with nhi_invoke.invocation(
        task_id="case-sdk",
        aws_role_arn=sandbox["target_role_arn"],
        gcp_provider=sandbox["gcp_provider"],
        gcp_service_account=sandbox["gcp_service_account"],
        token=token_supplier(sandbox),
        environ=environ,
    ) as inv:
        note_environment(inv.env)
        sts = inv.boto3_session().client("sts", endpoint_url=sandbox["aws_endpoint"])
        assert sts.get_caller_identity()["Arn"] == inv.principals["aws"]
        sts.close()
        credentials = inv.google_credentials()
        assert credentials.valid
        query = urllib.parse.urlencode({"access_token": credentials.token})
        with urllib.request.urlopen(f"{sandbox['gcp_endpoint']}/tokeninfo?{query}") as answer:
            assert json.load(answer)["email"] == sandbox["gcp_service_account"]
        assert inv.principals["gcp"] == sandbox["gcp_service_account"]
    with pytest.raises(nhi_invoke.NhiError, match="has ended"):
        inv.boto3_session()


def test_an_azure_task_s_tool_gets_an_identity_endpoint_that_ends_with_the_task(
    entra: EntraEmulator, sandbox: dict[str, Any], base_env: dict[str, str], tmp_path: Path
) -> None:
    environ = runtime_environ(base_env, sandbox, tmp_path) | {
        "AZURE_AUTHORITY_HOST": entra.url,
        "NHI_AZURE_CA_BUNDLE": entra.ca_file,
    }
    arm = "https://management.azure.com/.default"
    with nhi_invoke.invocation(
        task_id="case-azure",
        azure_client_id=SANDBOX_CLIENT_ID,
        azure_tenant_id=SANDBOX_TENANT_ID,
        token=token_supplier(sandbox),
        environ=environ,
    ) as inv:
        note_environment(inv.env)
        # An MCP server or tool of this task, with azure-identity as it is.
        tool_env = inv.env | {"REQUESTS_CA_BUNDLE": entra.ca_file}
        report = run_azure_child(tool_env, "managed", arm)
        assert report["ok"], report
        assert report["claims"]["oid"] == SANDBOX_OBJECT_ID
    after = run_azure_child(tool_env, "managed", arm)
    assert after["ok"] is False  # the task's endpoint ended with its block
    (exited,) = _of(environ, inv.invocation_id, "command.exited")
    assert exited["ended_by"] == "return"

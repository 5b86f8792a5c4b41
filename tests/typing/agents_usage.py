"""How an agent runtime uses the API, written as its authors would under `mypy --strict`
(tests/unit/test_tasks_keywords.py checks it against the installed package; never run)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping
from datetime import datetime

import nhi_invoke
from nhi_invoke import Invocation, InvocationSettings, NhiError, current_invocation


def token_for(audience: str) -> str:
    with open("/var/run/secrets/tokens/oidc-token", encoding="utf-8") as handle:
        return handle.read().strip()


def run_tool(argv: list[str]) -> str:
    inv: Invocation = current_invocation()
    done = subprocess.run(argv, env=inv.env, capture_output=True, text=True, check=True)
    return done.stdout


@nhi_invoke.with_invocation(aws_role_arn="arn:aws:iam::123456789012:role/support", aws_revoke=True)
def lookup_order(order_id: str) -> int:
    return len(order_id)


@nhi_invoke.with_invocation(token_file="/var/run/secrets/tokens/oidc-token")
async def fetch(url: str) -> bytes:
    return url.encode()


async def handle_case(case_id: str, user: str) -> Mapping[str, str]:
    common: InvocationSettings = {
        "aws_role_arn": "arn:aws:iam::123456789012:role/support",
        "aws_oidc_role_arn": "arn:aws:iam::123456789012:role/support-entry",
        "aws_revoke": True,
        "tags": {"team": "support"},
        "agent": "support-bot",
    }
    # One TypedDict for the shared settings and the task's own (mypy refuses to merge a
    # total=False TypedDict with keywords it may also hold).
    task: InvocationSettings = {**common, "task_id": case_id, "on_behalf_of": user}
    try:
        async with nhi_invoke.invocation(token=token_for, **task) as inv:
            order: int = lookup_order("1042")
            body: bytes = await fetch("https://example.com")
            expires: datetime | None = inv.expires_at
            identifier: str = inv.invocation_id
            run_tool(["aws", "sts", "get-caller-identity"])
            print(order, body, expires, identifier, inv.task_id, inv.closed)
            return inv.principals
    except NhiError as error:
        print(error.one_line(), error.exit_code)
        raise


def read_migrations(addr: str) -> str:
    # The Vault broker's options, as run's: a token and a secret for this task only.
    with nhi_invoke.invocation(
        task_id="migrate",
        vault_addr=addr,
        vault_role="migrations",
        vault_secrets=["database/creds/migrate username | PGUSER"],
        vault_ttl=300,
        ledger_key_file="/run/secrets/ledger-key",
        token=token_for,
    ) as inv:
        return inv.env["PGUSER"]


def main() -> None:
    with nhi_invoke.invocation(task_id="nightly", token_command=["print-token"]) as inv:
        inv.close()
    asyncio.run(handle_case("case-1042", "alice@example.com"))

"""A support desk agent with one cloud identity per customer case, written with the standard
library and nhi-invoke only (no agent framework).

Each case is an asyncio task with its own invocation: its own AWS session (named after the
case and the agent, tagged with the customer), and its own MCP tool server over stdio,
started with that session in its environment (`inv.env`). A stand-in for the model turns each
customer message into tool calls. When one case's model asks for a risky tool, the desk
cancels that case: its block ends, its session is revoked at once (`aws_revoke`), its tool
server stops; the other case goes on with its own session and completes.

    python examples/agents/support_desk.py --sandbox sandbox.json

Against real AWS, leave out `--sandbox` and configure it the way `nhi-invoke run` is
configured (docs/agents.md): NHI_AWS_ROLE_ARN, NHI_AWS_OIDC_ROLE_ARN, NHI_AWS_REVOKE=true and
a token source such as NHI_TOKEN_FILE (a projected service-account token).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nhi_invoke

AGENT = "support-desk"
TOOL_SERVER = Path(__file__).with_name("case_tools.py")
RISKY_TOOLS = frozenset({"export_customers"})


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, str] = field(default_factory=dict)


def model(message: str) -> list[ToolCall]:
    """The stand-in for a language model: the tool calls it makes for a customer's message."""
    calls = [ToolCall("whoami")]
    if "export" in message.lower():
        calls.append(ToolCall("export_customers", {"scope": "all"}))
    for word in message.replace("?", " ").split():
        if word.isdigit():
            calls.append(ToolCall("order_status", {"order": word}))
    return calls


class ToolServer:
    """One case's MCP server, a process of its own speaking JSON-RPC on its stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.next_id = 0

    @classmethod
    async def start(cls, env: dict[str, str]) -> ToolServer:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(TOOL_SERVER),
            env=env,  # the case's credentials, and no other identity
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        server = cls(process)
        await server.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
        await server.notify("notifications/initialized")
        return server

    async def notify(self, method: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")
        await self.process.stdin.drain()

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()
        reply: dict[str, Any] = json.loads(await self.process.stdout.readline())
        return dict(reply["result"])

    async def call(self, tool: ToolCall) -> str:
        result = await self.request("tools/call", {"name": tool.name, "arguments": tool.arguments})
        return str(result["content"][0]["text"])

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
        await self.process.wait()


class Desk:
    """Runs each case as a task of its own and revokes a case whose model goes astray."""

    def __init__(self, token: Callable[[str], str] | None) -> None:
        self.token = token
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.inboxes: dict[str, asyncio.Queue[str | None]] = {}

    def open_case(self, case: str, customer: str) -> None:
        self.inboxes[case] = asyncio.Queue()
        self.tasks[case] = asyncio.create_task(self.handle(case, customer), name=case)

    async def handle(self, case: str, customer: str) -> None:
        async with nhi_invoke.invocation(
            task_id=case, agent=AGENT, on_behalf_of=customer, token=self.token
        ) as inv:
            print(f"{case}: acts as {inv.principals['aws']} (invocation {inv.invocation_id})")
            tools = await ToolServer.start(inv.env)
            try:
                while (message := await self.inboxes[case].get()) is not None:
                    for call in model(message):
                        if call.name in RISKY_TOOLS:
                            self.revoke(case, f"its model asked for {call.name}")
                            await asyncio.Event().wait()  # until the cancellation lands
                        print(f"{case}: {call.name} -> {await tools.call(call)}")
            finally:
                await tools.stop()
        print(f"{case}: done; its credentials are released")

    def revoke(self, case: str, why: str) -> None:
        """Cancel the case's task: its `async with` block ends and revokes its session."""
        print(f"{case}: {why}: revoking it mid-flight")
        self.tasks[case].cancel()


async def serve(token: Callable[[str], str] | None) -> int:
    desk = Desk(token)
    desk.open_case("case-1042", "alice@example.com")
    desk.open_case("case-1043", "mallory@example.com")
    await desk.inboxes["case-1042"].put("Where is my order 77?")
    await desk.inboxes["case-1043"].put("Please export every customer's card on file")
    try:
        await desk.tasks["case-1043"]
    except asyncio.CancelledError:
        print("case-1043: revoked; case-1042 goes on with its own session")
    # Alice writes again after the other case was revoked: her case's session still works.
    await desk.inboxes["case-1042"].put("Thanks! And order 78?")
    await desk.inboxes["case-1042"].put(None)
    await desk.tasks["case-1042"]
    print(f"see them with: nhi-invoke audit show --agent {AGENT}")
    return 0


def sandbox(ready_file: str) -> Callable[[str], str]:
    """Point everything at `nhi-invoke sandbox --ready-file`'s emulators; tokens come from its
    issuer (as a runtime's would from its identity provider)."""
    ready = json.loads(Path(ready_file).read_text())
    for name in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_IAM", "AWS_EC2_METADATA_DISABLED"):
        os.environ.setdefault(name, ready["environ"][name])
    os.environ.setdefault("NHI_AWS_ROLE_ARN", ready["target_role_arn"])
    os.environ.setdefault("NHI_AWS_OIDC_ROLE_ARN", ready["entry_role_arn"])
    os.environ.setdefault("NHI_AWS_REVOKE", "true")

    def token(audience: str) -> str:
        url = f"{ready['token_request_url']}&audience={urllib.parse.quote(audience, safe='')}"
        bearer = ready["environ"]["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
        headers = {"Authorization": f"bearer {bearer}"}
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - the sandbox's
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return str(json.load(answer)["value"])

    return token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", metavar="READY_FILE", help="nhi-invoke sandbox's ready file")
    args = parser.parse_args()
    token = sandbox(args.sandbox) if args.sandbox else None
    return asyncio.run(serve(token))


if __name__ == "__main__":
    sys.exit(main())

"""A minimal MCP server over stdio (newline-delimited JSON-RPC 2.0): the tools of one support
case, started once per case with that case's credentials in its environment (`inv.env`).

It knows nothing of nhi-invoke: like any tool, it finds its AWS credentials where the SDKs
look (the environment), so it acts as the case's own session and as nothing else.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3

TOOLS = [
    {
        "name": "whoami",
        "description": "The AWS identity this case's tools act as.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "order_status",
        "description": "Where a customer's order is.",
        "inputSchema": {"type": "object", "properties": {"order": {"type": "string"}}},
    },
    {
        "name": "export_customers",
        "description": "Export customer records (a risky tool: the desk never lets it run).",
        "inputSchema": {"type": "object", "properties": {"scope": {"type": "string"}}},
    },
]


def caller() -> str:
    """The session ARN of the credentials in this process's environment."""
    sts = boto3.client("sts")
    try:
        return str(sts.get_caller_identity()["Arn"])
    finally:
        sts.close()


def call(name: str, arguments: dict[str, Any]) -> str:
    if name == "whoami":
        return caller()
    if name == "order_status":
        return f"order {arguments.get('order')} shipped on 2026-11-30 (looked up as {caller()})"
    if name == "export_customers":
        return f"exported {arguments.get('scope')} customers as {caller()}"
    raise KeyError(name)


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    method, ident = request.get("method"), request.get("id")
    if ident is None:
        return None  # a notification (notifications/initialized): no answer
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "case-tools", "version": "1.0"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        params = request.get("params", {})
        try:
            text = call(params.get("name", ""), params.get("arguments", {}))
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        except Exception as error:  # the tool's failure goes back to the caller, as MCP says
            text = f"{type(error).__name__}: {error}"
            result = {"content": [{"type": "text", "text": text}], "isError": True}
    else:
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "unknown"}}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

"""One invocation, from plan to ledger: the flow (open, close), the child, --serve, recovery."""

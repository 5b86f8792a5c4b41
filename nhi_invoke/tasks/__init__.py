"""The Python API for agent runtimes and orchestrators: one invocation per task, in-process.

The public names are `nhi_invoke.invocation`, `nhi_invoke.with_invocation`,
`nhi_invoke.current_invocation` and `nhi_invoke.Invocation` (docs/agents.md); they live in
`api.py` and are imported only when first used, so that `import nhi_invoke` and the CLI stay
fast. `context.py` holds the task context the CLI shares.
"""

"""`nhi-invoke audit trace`: join the ledgers with the clouds' own logs.

The flow, one module each: `ledgers` reads what nhi-invoke issued; `sources` names one reader
per kind of cloud log (`cloudtrail`, `gcp_audit`, `vault_audit`), each reading files through
DuckDB (`duck`) into `LogEvent`s; `attribution` ties every event to the one invocation that made
it (or says why it cannot); `findings` gates the exit code; `render` draws it; `sql` prints the
same join for the engine where an organisation's logs already live. `investigate` runs them.
"""

"""The audit ledger: typed records, one writer (`store.Ledger`), one reader (`store.read`),
the HMAC key, and verification."""

"""Audits that need no cloud access: the ledger, pipeline files, trust policies."""

"""Credential brokers: turn an OIDC token into one invocation's cloud credentials."""

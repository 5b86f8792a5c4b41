"""The Vault/OpenBao broker: a JWT login per invocation, secrets read with it, the token
revoked (and with it every lease it obtained) when the command ends."""

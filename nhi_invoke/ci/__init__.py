"""CI systems: who is running us (context) and how to get an OIDC token from them."""

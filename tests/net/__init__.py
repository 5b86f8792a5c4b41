"""Test networks: a logging, enforcing forward proxy, a private CA and TLS fronts that put the
emulators behind names only the proxy knows (see docs/networks.md, "Test infrastructure")."""

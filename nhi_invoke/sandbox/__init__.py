"""Embedded emulators on 127.0.0.1: an OIDC issuer speaking GitHub's token protocol, and
moto's server for STS and IAM. Used by `nhi-invoke sandbox` and by the tests."""

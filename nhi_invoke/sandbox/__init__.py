"""Embedded emulators on 127.0.0.1: an OIDC issuer speaking GitHub's token protocol, and one
emulator per broker (`<broker>.py`, named by the broker's declaration). Used by
`nhi-invoke sandbox` and by the tests."""

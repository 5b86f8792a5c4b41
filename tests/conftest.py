"""Fixtures shared across the test tree, registered as plugins (pytest reads
`pytest_plugins` only from this top-level conftest)."""

pytest_plugins = ["tests.vault_fixtures", "tests.azure_fixtures"]

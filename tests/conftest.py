"""Plugins shared by the whole suite (pytest takes `pytest_plugins` only from here)."""

pytest_plugins = ["tests.azure_fixtures"]

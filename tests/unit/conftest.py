"""Fixtures of the Python API's unit tests (tests/unit/tasks_fixtures.py)."""

from tests.unit.tasks_fixtures import secrets_service, task_environ, task_settings

__all__ = ["secrets_service", "task_environ", "task_settings"]

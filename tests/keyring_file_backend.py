"""A keyring backend that keeps passwords in a JSON file: a real keyring plug-in (selected with
PYTHON_KEYRING_BACKEND), so the tests exercise nhi-invoke's keyring path across processes on
a machine with no OS keyring."""

from __future__ import annotations

import json
import os

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def _path(self) -> str:
        return os.environ["TEST_KEYRING_FILE"]

    def _load(self) -> dict[str, str]:
        try:
            with open(self._path, encoding="utf-8") as handle:
                return dict(json.load(handle))
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        with open(self._path, "w", encoding="utf-8") as handle:
            json.dump(data, handle)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}/{username}", None)
        with open(self._path, "w", encoding="utf-8") as handle:
            json.dump(data, handle)

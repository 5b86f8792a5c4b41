"""The invocation's private folder: the command's tools keep their configuration and caches
here (a CLI's config folder, empty shared credential files) instead of in the runner's
home.

Mode 0700, outside the workspace (under `$RUNNER_TEMP` on GitHub, else the system's temporary
folder), one subfolder per broker, and removed with everything in it when the invocation
ends, so that nothing a tool cached there (gcloud's access tokens, its logs) outlives it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

# Where the folder goes when there is no $RUNNER_TEMP: the system's temporary folder, found as
# the standard library's tempfile finds it (without importing it on every run).
_TEMPORARY = ("TMPDIR", "TEMP", "TMP")


class PrivateFolder:
    """Created on first use; `remove()` on every exit path (harmless twice)."""

    def __init__(self, environ: Mapping[str, str], invocation_id: str) -> None:
        candidates = [environ.get(name) for name in ("RUNNER_TEMP", *_TEMPORARY)]
        self._base = next((c for c in candidates if c and os.path.isdir(c)), "/tmp")  # noqa: S108
        self._prefix = f"nhi-invoke-{invocation_id}-"
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            # 0700, with a random name nobody can guess or take first (mkdir fails on an
            # existing name, symlinks included), as tempfile.mkdtemp makes it.
            path = Path(self._base, self._prefix + os.urandom(8).hex())
            os.mkdir(path, 0o700)
            self._path = path
        return self._path

    def folder(self, name: str) -> Path:
        """A subfolder of its own for one broker (0700)."""
        sub = self.path / name
        sub.mkdir(mode=0o700, exist_ok=True)
        return sub

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)

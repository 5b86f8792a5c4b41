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
import tempfile
from collections.abc import Mapping
from pathlib import Path


class PrivateFolder:
    """Created on first use; `remove()` on every exit path (harmless twice)."""

    def __init__(self, environ: Mapping[str, str], invocation_id: str) -> None:
        self._base = environ.get("RUNNER_TEMP") or None
        self._prefix = f"nhi-invoke-{invocation_id}-"
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            base = self._base if self._base and os.path.isdir(self._base) else None
            # mkdtemp makes it 0700, with a name nobody can guess or take first.
            self._path = Path(tempfile.mkdtemp(prefix=self._prefix, dir=base))
        return self._path

    def folder(self, name: str) -> Path:
        """A subfolder of its own for one broker (0700)."""
        sub = self.path / name
        sub.mkdir(mode=0o700, exist_ok=True)
        return sub

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)

"""The API's keyword arguments are the option registry's, typed: a user's `mypy --strict`
accepts correct use and catches mistakes, against the package as installed (with py.typed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

from nhi_invoke import settings
from nhi_invoke.tasks.keywords import NOT_IN_API, InvocationSettings

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "typing"


def test_the_keywords_are_the_options_of_run_but_those_of_a_child_process() -> None:
    names = {option.name for option in settings.options({})}
    assert set(get_type_hints(InvocationSettings)) == names - set(NOT_IN_API)
    assert set(NOT_IN_API) <= names


def _installed(tmp_path: Path) -> Path:
    """A Python environment holding nhi-invoke as pip installs it (the package with py.typed),
    and nothing else: the checker sees only what a user's would."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copytree(ROOT / "nhi_invoke", Path(purelib) / "nhi_invoke")
    assert (Path(purelib) / "nhi_invoke" / "py.typed").exists()
    return python


def test_mypy_strict_accepts_the_usage_sample_and_catches_the_misuse(tmp_path: Path) -> None:
    python = _installed(tmp_path)
    # Copied out of the repository, so that the checker cannot find the package's source.
    for sample in ("agents_usage.py", "agents_misuse.py"):
        shutil.copy(SAMPLES / sample, tmp_path / sample)
    # And every Python sample of docs/agents.md, as a reader would copy it.
    page = (ROOT / "docs" / "agents.md").read_text()
    documented = re.findall(r"<!-- runs: [^>]* -->\n```python\n(.*?)```", page, re.DOTALL)
    for index, code in enumerate(documented):
        (tmp_path / f"agents_doc_{index}.py").write_text(code)
    assert len(documented) >= 5
    done = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--no-incremental",
            "--python-executable", str(python),
            "agents_usage.py", "agents_misuse.py",
            *(f"agents_doc_{index}.py" for index in range(len(documented))),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )  # fmt: skip
    errors = re.findall(r"^(\S+?):(\d+): error: .*\[([a-z-]+)\]$", done.stdout, re.MULTILINE)
    assert [e for e in errors if "agents_misuse" not in e[0]] == [], done.stdout
    expected = [
        (str(number), kind)
        for number, line in enumerate((SAMPLES / "agents_misuse.py").read_text().splitlines(), 1)
        if (kind := line.partition("# error: ")[2])
    ]
    assert [(line, kind) for path, line, kind in errors if "agents_misuse" in path] == expected
    assert str(ROOT / "nhi_invoke") not in done.stdout

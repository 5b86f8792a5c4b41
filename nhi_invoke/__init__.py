"""nhi-invoke: one short-lived cloud identity per pipeline step."""

__version__ = "0.1.0"

# Where nhi-invoke installs from: there is no release on PyPI, and the name there is not ours.
SOURCE = "git+https://github.com/nhi-invoke/nhi-invoke"


def install_hint(extra: str) -> str:
    """How to install nhi-invoke with an optional extra (for an error's fix)."""
    return f"pip install 'nhi-invoke[{extra}] @ {SOURCE}' (or '.[{extra}]' in a checkout)"

"""What nhi-invoke does to its own process so that the command it runs cannot look inside.

On Linux a process of the same user may read another's `/proc/PID/environ` and memory, and
attach to it with ptrace, as long as that process is *dumpable*. nhi-invoke's environment
holds what the command must not have (the CI's token-request variables, the ledger key), so
`nhi-invoke run` clears the flag as it starts (`prctl(PR_SET_DUMPABLE, 0)`); its `/proc/PID`
files then belong to root, and only root (or a holder of CAP_SYS_PTRACE) can read them. The
command itself is unaffected: `execve` makes every new program dumpable again.

The CLI calls `make_non_dumpable()`; importing nhi-invoke as a library never does, because
the flag belongs to the whole host process (it also stops its core dumps). A host that runs
commands through the Python API and wants the same boundary calls it itself.
"""

from __future__ import annotations

import sys

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
PR_GET_DUMPABLE = 3


def make_non_dumpable() -> bool:
    """Mark this process non-dumpable; True when the flag is now clear (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # noqa: PLC0415 - ~4 ms, only on the paths that hold secrets

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            return False
        return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False

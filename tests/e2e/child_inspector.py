"""A hostile step command: tries to read another process's environment, attach to it, and
write files it should not. Reports what worked, by name only (never a value).

    child_inspector.py REPORT PID|parent|grandparent [--write PATH]... [--look NAME]...
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys

PTRACE_SEIZE = 0x4206  # attaches without stopping the target; detached when we exit
PR_GET_DUMPABLE = 3


def _target(which: str) -> int:
    if which == "parent":
        return os.getppid()
    if which == "grandparent":
        with open(f"/proc/{os.getppid()}/stat", encoding="ascii") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    return int(which)


def _uid(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        line = next(row for row in handle if row.startswith("Uid:"))
    return int(line.split()[1])


def _environment(pid: int, names: list[str]) -> dict[str, object]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            entries = handle.read().split(b"\0")
    except OSError as exc:
        return {"read": False, "error": errno.errorcode.get(exc.errno or 0, "?")}
    present = {entry.split(b"=", 1)[0].decode(errors="replace") for entry in entries if entry}
    return {"read": True, "found": sorted(n for n in names if n in present)}


def _attach(pid: int) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(PTRACE_SEIZE, pid, None, None) == 0:
        return "attached"
    return errno.errorcode.get(ctypes.get_errno(), "?")


def _signal(pid: int) -> str:
    """Whether the target could be signalled (and so killed before its cleanup)."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, "?")
    return "allowed"


def _write(path: str) -> str:
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("")
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, "?")
    return "written"


def main() -> None:
    report, which, *rest = sys.argv[1:]
    writes = [rest[i + 1] for i, flag in enumerate(rest) if flag == "--write"]
    names = [rest[i + 1] for i, flag in enumerate(rest) if flag == "--look"]
    pid = _target(which)
    result = {
        "pid": pid,
        "same_user": _uid(pid) == os.getuid(),
        "uid": os.getuid(),
        "environ": _environment(pid, names),
        "ptrace": _attach(pid),
        "signal": _signal(pid),
        "writes": {path: _write(path) for path in writes},
        "own": sorted(n for n in names if n in os.environ),
        # Whether this process (the command) is dumpable, as every program normally is.
        "dumpable": ctypes.CDLL(None, use_errno=True).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0),
    }
    with open(report, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()

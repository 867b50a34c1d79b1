"""Child processes seen through Linux /proc (for tests of the OPC UA process's lifetime)."""

from __future__ import annotations

import contextlib
from pathlib import Path


def children_of(pid: int) -> set[int]:
    """Process ids of `pid`'s live children."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def spawned_children(pid: int) -> list[int]:
    """The multiprocessing children of `pid` that run a service (not python's resource tracker)."""
    found = []
    for child in children_of(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (neither gone nor a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

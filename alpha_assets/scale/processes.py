"""Processes the scale-out profile starts on one machine, and the guarantee that none outlives it.

Each process (alpha_assets.processes.ManagedProcess) starts in its own session and carries
`ALPHA_SCALE_STACK_ID` in its environment: whatever it spawned (run workers, a soak's process tree)
inherits the mark, and `sweep()` finds anything left over by it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

STACK_ID_ENV = "ALPHA_SCALE_STACK_ID"


def marked_processes(stack_id: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment carries this stack's mark."""
    mark = f"{STACK_ID_ENV}={stack_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z":
            found.append((int(entry.name), cmd))
    return found


def sweep(stack_id: str) -> list[tuple[int, str]]:
    """SIGKILL every process still carrying the mark; returns what it found (empty = nothing leaked)."""
    leftovers = marked_processes(stack_id)
    for pid, _ in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return leftovers

"""A debugging aid for a worker's memory: with ``ALPHA_MEMTRACE=<file>`` in its environment the
worker starts tracemalloc and, every ``EVERY_S`` at a heartbeat, appends to ``<file>`` its RSS, what
Python holds of what it allocated since it started consuming, and the lines that allocated most of
it (with their callers) and grew most since the previous report.

It costs nothing when the variable is unset (the default): tracemalloc slows every allocation, so
it is for a run made to find out where memory goes, never for a measured one. The traces of start-up
(imports, compiled kernels) are cleared at the first report, which keeps each snapshot small enough
to take in a running worker. Memory allocated outside Python's allocator (SQLite's page cache,
polars/Arrow buffers, glibc's free lists) shows in RSS only.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import psutil

ENV = "ALPHA_MEMTRACE"
FRAMES = 6  # traceback depth kept per allocation: enough to see which caller of a helper holds it
TOP = 12
EVERY_S = 5.0


def _where(tb: tracemalloc.Traceback) -> str:
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb))


class MemTrace:
    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name
        tracemalloc.start(FRAMES)
        self.prev: tracemalloc.Snapshot | None = None
        self.t0 = self.last = time.monotonic()
        self.cleared = False

    @staticmethod
    def from_env(name: str) -> MemTrace | None:
        target = os.environ.get(ENV, "")
        return MemTrace(Path(target), name) if target else None

    def beat(self, note: str = "") -> None:
        now = time.monotonic()
        rss = psutil.Process().memory_info().rss / 2**20
        head = f"== {self.name} t={now - self.t0:.1f}s rss={rss:.0f}MB {note}"
        if not self.cleared:  # from here on only what the running worker allocates is traced
            tracemalloc.clear_traces()
            self.cleared, self.last = True, now
            self._write([head + " (traces cleared)"])
            return
        if now - self.last < EVERY_S:
            return
        self.last = now
        snap = tracemalloc.take_snapshot()
        cur, peak = tracemalloc.get_traced_memory()
        lines = [f"{head} traced={cur / 2**20:.0f}MB traced_peak={peak / 2**20:.0f}MB "
                 f"snapshot={time.monotonic() - now:.1f}s"]
        lines.append("-- held now, by allocating line and callers")
        for st in snap.statistics("traceback")[:TOP]:
            lines.append(f"  {st.size / 2**20:7.1f}MB n={st.count}  {_where(st.traceback)}")
        if self.prev is not None:
            lines.append("-- grew since the last report")
            for d in snap.compare_to(self.prev, "lineno")[:TOP]:
                lines.append(f"  {d.size_diff / 2**20:+7.1f}MB now {d.size / 2**20:7.1f}MB  {_where(d.traceback)}")
        self._write(lines)
        self.prev = snap

    def _write(self, lines: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write("\n".join(lines) + "\n")

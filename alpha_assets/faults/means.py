"""The means of the faults that act on what the workers depend on: another process holding the
SQLite write lock, a directory whose file system is full."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from alpha_assets.processes import spawn


class SqliteLocker:
    """Another process holding ``BEGIN EXCLUSIVE`` on the database until released (or ``hold_s``)."""

    _CODE = ("import sqlite3,sys,time\n"
             "c=sqlite3.connect(sys.argv[1],timeout=30,isolation_level=None)\n"
             "c.execute('BEGIN EXCLUSIVE')\nprint('LOCKED',flush=True)\n"
             "sys.stdin.readline()\nc.execute('COMMIT')\n")

    def __init__(self, db: Path) -> None:
        self.db = Path(db)
        self.proc: subprocess.Popen | None = None

    def acquire(self, timeout_s: float = 10.0) -> None:
        if not self.db.exists():
            raise FileNotFoundError(f"sqlite_locked: {self.db} does not exist (is the sink sqlite or dual?)")
        proc = self.proc = spawn([sys.executable, "-c", self._CODE, str(self.db)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got: list[str] = []
        out = proc.stdout
        assert out is not None  # stdout=PIPE
        reader = threading.Thread(target=lambda: got.append(out.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not got or got[0].strip() != "LOCKED":
            self.release()
            raise TimeoutError(f"sqlite_locked: could not take BEGIN EXCLUSIVE on {self.db} in {timeout_s}s")

    def release(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class FullDisk:
    """A directory (the JSONL spool, the landing zone) on a tiny tmpfs filled to the last byte:
    every write gets ENOSPC.

    A real full file system (not a read-only flag, which root ignores). On undo the few files the
    worker managed to create there are moved back under the real directory before unmounting, so
    the fault itself destroys nothing. Needs ``mount`` (root); ``FullDisk.available()`` says.
    """

    def __init__(self, directory: Path, size_kb: int = 16) -> None:
        self.dir, self.size_kb = Path(directory), size_kb
        self.mounted = False

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and shutil.which("mount") is not None

    def fill(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # the same directory tree on the full disk, so a new file's path resolves and its write is what fails
        subdirs = sorted(p.relative_to(self.dir) for p in self.dir.rglob("*") if p.is_dir())
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_kb}k,mode=0755", "tmpfs", str(self.dir)],
                       check=True, capture_output=True, timeout=10)
        self.mounted = True
        for sub in subdirs:
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        try:
            with open(self.dir / ".filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        except OSError:  # ENOSPC: the file system is full now, as intended
            pass

    def undo(self) -> list[str]:
        """Unmount. What the full file system holds is dropped: every write there failed (ENOSPC), and
        the writers keep what failed to write again (the spool forgets the keys of unflushed lines, the
        lander keeps its minute), so nothing of it is data. Returns the dropped files' names."""
        if not self.mounted:
            return []
        dropped = [str(p.relative_to(self.dir)) for p in self.dir.rglob("*") if p.is_file() and p.name != ".filler"]
        (self.dir / ".filler").unlink(missing_ok=True)
        for _ in range(10):  # a writer may hold a file there for a moment
            r = subprocess.run(["umount", str(self.dir)], capture_output=True, timeout=10)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        else:
            # still busy: detach now, so the fault ends on time and new files go to the real directory;
            # the detached file system goes away once that file is closed
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True, timeout=10)
        self.mounted = False
        return dropped

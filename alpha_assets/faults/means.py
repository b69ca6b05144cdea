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

from alpha_assets.live.process import spawn


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
        self.proc = spawn([sys.executable, "-c", self._CODE, str(self.db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not got or got[0].strip() != "LOCKED":
            self.release()
            raise TimeoutError(f"sqlite_locked: could not take BEGIN EXCLUSIVE on {self.db} in {timeout_s}s")

    def release(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class FullDisk:
    """A directory (the JSONL spool, the landing zone) on a small tmpfs filled to the last byte:
    every write there gets ENOSPC. A real full file system (not a read-only flag, which root ignores).

    Two ways, and only the first is faithful for a directory whose files are open when the fault
    begins:

    * ``standing()`` mounts the tmpfs before the workers start (what was in the directory is moved
      onto it); ``fill()`` then fills that same file system with a filler file, so files already open
      get ENOSPC too and renames behave as on any full disk, and ``undo()`` deletes the filler: room
      again, nothing unmounted under a writer. ``teardown()`` (after the run) moves everything back
      to the real directory and unmounts.
    * otherwise ``fill()`` mounts a full tmpfs over the directory at the fault (for a writer that
      opens its files at the fault, as the lander does each minute) and ``undo()`` unmounts it while
      it is still full, so no write there ever succeeds and nothing of worth is dropped with it.

    Needs ``mount`` (root); ``FullDisk.available()`` says.
    """

    FILLER = ".filler"

    def __init__(self, directory: Path, size_kb: int = 16) -> None:
        self.dir, self.size_kb = Path(directory), size_kb
        self.mounted = False
        self.is_standing = False

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and shutil.which("mount") is not None

    def _mount(self) -> None:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_kb}k,mode=0755", "tmpfs", str(self.dir)],
                       check=True, capture_output=True, timeout=10)
        self.mounted = True

    def _umount(self) -> None:
        for _ in range(10):  # a writer may hold a file there for a moment
            if subprocess.run(["umount", str(self.dir)], capture_output=True, timeout=10).returncode == 0:
                break
            time.sleep(0.1)
        else:  # still busy: detach now; the detached file system goes away once that file is closed
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True, timeout=10)
        self.mounted = False

    def standing(self) -> FullDisk:
        """Put the directory on its own tmpfs now, before anything opens files there."""
        if os.path.ismount(self.dir):  # left by a run that was killed: its files are on it, use it
            self.mounted = self.is_standing = True
            return self
        aside = self.dir.with_name(self.dir.name + ".before-tmpfs")
        if self.dir.exists():
            os.replace(self.dir, aside)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._mount()
        self.is_standing = True
        if aside.exists():
            shutil.copytree(aside, self.dir, dirs_exist_ok=True)
            shutil.rmtree(aside)
        return self

    def fill(self) -> None:
        if not self.is_standing:
            self.dir.mkdir(parents=True, exist_ok=True)
            # the same directory tree on the full disk, so a new file's path resolves and its write is what fails
            subdirs = sorted(p.relative_to(self.dir) for p in self.dir.rglob("*") if p.is_dir())
            self._mount()
            for sub in subdirs:
                (self.dir / sub).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / self.FILLER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for chunk in (b"\0" * (1 << 20), b"\0" * 4096):  # big pieces, then the last pages
                try:
                    while os.write(fd, chunk):
                        pass
                except OSError:  # ENOSPC: full at this grain
                    continue
        finally:
            os.close(fd)

    def undo(self) -> None:
        """End the fault: the filler goes (standing), or the still-full tmpfs is unmounted; in both
        cases no write that succeeded is dropped."""
        if self.is_standing:
            (self.dir / self.FILLER).unlink(missing_ok=True)
        elif self.mounted:
            self._umount()

    def teardown(self) -> None:
        """After the run (writers stopped): the standing tmpfs's files back to the real directory."""
        if not (self.is_standing and self.mounted):
            return
        (self.dir / self.FILLER).unlink(missing_ok=True)
        aside = self.dir.with_name(self.dir.name + ".from-tmpfs")
        shutil.copytree(self.dir, aside, dirs_exist_ok=True)
        self._umount()
        self.is_standing = False
        shutil.copytree(aside, self.dir, dirs_exist_ok=True)
        shutil.rmtree(aside)

"""Warm standby: one spare interpreter per restartable worker kind, imported and warmed up ahead of
need, that becomes the worker when the supervisor restarts it. A restart then costs a line on a pipe,
not an interpreter start, the imports (numba, polars, redis) and the engine's first-call kernel loads
(seconds each under load).

The spare side (``python -m alpha_assets.live.standby <worker module>``): import the worker module,
run its warm-up (``workers/warmup.py``), then wait on stdin. ``GO`` makes it the worker (``main()``
of the module, as ``python -m <module>`` would run it); end of file (its supervisor closed the
pipe or died) ends it. Until it is handed over it writes nothing and holds nothing of the run.

The supervisor side (``Spares``): spawned like any child (own session, parent-death signal), by the
supervisor when no worker is starting, so a spare never competes for the CPU with a start; taken at
a restart (``take``), dropped at stop. The restart policy does not change: a spare is only a faster
way to perform a restart the policy ordered.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from alpha_assets.processes import spawn

GO = b"go\n"
STANDBY_MODULE = "alpha_assets.live.standby"
RESPAWN_S = 10.0  # at most one spare of a worker this often: a spare that dies at once is not respawned in a loop


def standby_cmd(worker_module: str) -> list[str]:
    """The command of a spare for the worker run as ``python -m worker_module``."""
    return [sys.executable, "-m", STANDBY_MODULE, worker_module]


@dataclass
class Spare:
    proc: subprocess.Popen
    spawned_at: float  # monotonic


class Spares:
    """At most one spare per worker name."""

    def __init__(self) -> None:
        self.spares: dict[str, Spare] = {}
        self._spawned: dict[str, float] = {}  # monotonic time of the last spawn per name

    def wanted(self, name: str) -> bool:
        """No live spare of ``name``, and none was started in the last RESPAWN_S."""
        spare = self.spares.get(name)
        if spare is not None and spare.proc.poll() is None:
            return False
        return time.monotonic() - self._spawned.get(name, -RESPAWN_S) >= RESPAWN_S

    def spawn(self, name: str, cmd: Sequence[str], env: Mapping[str, str], stdout_path: Path, stderr_path: Path,
              cwd: Path | None = None) -> int:
        self.drop(name)
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            proc = spawn(cmd, env=dict(env), stdout=out, stderr=err, stdin=subprocess.PIPE, cwd=cwd)
        self.spares[name] = Spare(proc, time.monotonic())
        self._spawned[name] = time.monotonic()
        return proc.pid

    def take(self, name: str) -> tuple[subprocess.Popen, float] | None:
        """The spare of ``name`` told to become the worker, and how long it had been standing by;
        None when there is no live spare (the caller starts the worker cold)."""
        spare = self.spares.pop(name, None)
        if spare is None:
            return None
        if spare.proc.poll() is not None or spare.proc.stdin is None:
            self._reap(spare)
            return None
        try:
            spare.proc.stdin.write(GO)
            spare.proc.stdin.close()
        except OSError:  # it died just now
            self._reap(spare)
            return None
        return spare.proc, time.monotonic() - spare.spawned_at

    def drop(self, name: str) -> None:
        spare = self.spares.pop(name, None)
        if spare is not None:
            self._reap(spare)

    def drop_all(self) -> None:
        for name in list(self.spares):
            self.drop(name)

    @staticmethod
    def _reap(spare: Spare) -> None:
        """A spare holds nothing of the run: SIGKILL, and collect it."""
        if spare.proc.poll() is None:
            try:
                os.kill(spare.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            spare.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if spare.proc.stdin is not None:
            try:
                spare.proc.stdin.close()
            except OSError:
                pass


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m alpha_assets.live.standby <worker module>", file=sys.stderr)
        return 2
    module = importlib.import_module(args[0])
    from alpha_assets.live.workers.warmup import WARMUPS

    warm = WARMUPS.get(args[0])
    if warm is not None:
        try:
            warm()
        except Exception:  # the worker itself will meet any real problem and report it
            print(f"standby {args[0]}: warm-up failed, continuing cold", file=sys.stderr)
            traceback.print_exc()
    if sys.stdin.buffer.readline() != GO:
        return 0  # closed without a handover
    sys.argv = [args[0]]
    module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

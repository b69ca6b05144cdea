"""Local processes (the soak's workers, redis-server, the Pushgateway, Postgres, the scale-out stack's
Dagster processes): a free loopback port; `spawn`, a session of its own and death with this process;
a managed server logging to a file, stopped as a group; a readiness wait that fails early with the
log when the process died."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A loopback port free right now (tests and stacks run side by side: never a fixed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when the thread that started it dies, so a SIGKILLed
    soak (or Dagster op) leaves no worker, Redis or Pushgateway behind. libc is resolved here, in
    the parent: the forked child only makes the call (and exits at once if its parent is already gone)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return preexec


class _Spawner:
    """One long-lived daemon thread that forks every child of this process. The kernel sends the
    parent-death signal when the *thread* that forked a child ends, so children are started from a
    thread that lives as long as the process, whichever thread asks (a fault watcher restarting the
    Pushgateway ends long before the run)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="process-spawner", daemon=True)
                self._thread.start()
        box: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._jobs.put((fn, box))
        ok, value = box.get()
        if not ok:
            raise value
        return value

    def _run(self) -> None:
        while True:
            fn, box = self._jobs.get()
            try:
                box.put((True, fn()))
            except BaseException as exc:  # handed to the caller's thread
                box.put((False, exc))


_SPAWNER = _Spawner()


def spawn(cmd: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen`` in a new session whose child dies with this process (SIGKILL included)."""
    hook = die_with_parent()
    return _SPAWNER.call(lambda: subprocess.Popen(list(cmd), start_new_session=True, preexec_fn=hook,
                                                  **popen_kwargs))


class ManagedProcess:
    """One long-running server process, started in its own session."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.name, self.argv, self.env, self.log_path, self.cwd = name, list(argv), dict(env), Path(log_path), cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = spawn(self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: signal.Signals) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace_s: float = 15.0) -> int | None:
        """Signal the whole session, wait `grace_s`, then SIGKILL what is left. Returns the exit code."""
        if self.proc is None:
            return None
        self.signal_group(sig)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self.signal_group(signal.SIGKILL)  # the leader may be gone while its children linger
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, proc: ManagedProcess | None = None,
               interval_s: float = 0.25) -> None:
    """Poll `check` until it holds; fail early (with the log) if `proc` died meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not ready yet: connection refused, still loading, ...
            pass
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited while waiting for {what}; log {proc.log_path}:\n{proc.log_tail()}")
        time.sleep(interval_s)
    tail = f"; log {proc.log_path}:\n{proc.log_tail()}" if proc is not None else ""
    raise TimeoutError(f"{what} not ready within {timeout_s:.0f} s{tail}")

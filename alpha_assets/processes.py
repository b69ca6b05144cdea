"""Local server processes (redis-server, the Pushgateway, Postgres, the scale-out stack's Dagster
processes): a free loopback port, started in a session of its own and logging to a file, stopped as
a group, and a readiness wait that fails early with the log when the process died."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    """A loopback port free right now (tests and stacks run side by side: never a fixed port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedProcess:
    """One long-running server process, started in its own session."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.name, self.argv, self.env, self.log_path, self.cwd = name, list(argv), dict(env), Path(log_path), cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
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

"""The local Redis of a soak: a real ``redis-server`` (Debian package) on a free loopback port.

AOF is on under ``<data_root>/runtime/redis/<run_id>`` (``appendfsync everysec``: a process kill
loses nothing Redis wrote to the file; producers re-add their last seconds after a restart, see
``bus.Producer``). The soak runs it as the supervisor's first child (``redis_spec``), so a killed
Redis is restarted on the same port and replays its AOF; clients reconnect. ``ManagedRedis`` is
the same server for tests and benchmarks that run without a supervisor.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from alpha_assets.live.probes import LogKeyword, ProbeContext
from alpha_assets.live.process import ProcessSpec, RestartPolicy, spawn

READY_LOG = "Ready to accept connections"
INSTALL_HINT = "redis-server is not installed (apt-get install -y redis-server)"


def redis_binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                             else None)
    if found is None:
        raise FileNotFoundError(INSTALL_HINT)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_cmd(port: int, data_dir: Path) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--logfile", "", "--loglevel", "notice",
            # a soak's streams can hold minutes of a fast market; never evict them
            "--maxmemory-policy", "noeviction"]


def redis_dir(data_root: Path, run_id: str) -> Path:
    return Path(data_root) / "runtime" / "redis" / run_id


@dataclass(frozen=True)
class RedisPing:
    """Health: Redis answers PING within a second."""

    url: str

    def __call__(self, ctx: ProbeContext) -> tuple[bool, str]:
        try:
            r = redis.Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
            try:
                r.ping()
            finally:
                r.close()
        except (redis.RedisError, OSError) as exc:
            return False, f"redis ping: {type(exc).__name__}: {exc}"
        return True, "redis ping ok"


def redis_spec(data_root: Path, run_id: str, port: int, policy: RestartPolicy) -> ProcessSpec:
    """The supervisor's child for the soak's own Redis (restarted on the same port)."""
    url = f"redis://127.0.0.1:{port}/0"
    return ProcessSpec("redis", redis_cmd(port, redis_dir(data_root, run_id)), env={},
                       ready_probe=LogKeyword(READY_LOG), health_probe=RedisPing(url), restart_policy=policy)


class ManagedRedis:
    """A redis-server process with AOF in ``data_dir``: start, kill (SIGKILL), restart on the same port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir, self.port = Path(data_dir), port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> ManagedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as fh:
            self.proc = spawn(redis_cmd(self.port, self.data_dir), stdout=fh, stderr=fh, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                r = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
                r.ping()
                r.close()
                return self
            except (redis.RedisError, OSError):
                time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} not ready in {timeout_s}s: {tail}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

"""The local Redis of a soak: a real ``redis-server`` (Debian package) on a free loopback port.

AOF is on under ``<data_root>/runtime/redis/<run_id>`` (``appendfsync everysec``: a process kill
loses nothing Redis wrote to the file; producers re-add their last seconds after a restart, see
``bus.Producer``). The soak runs it as the supervisor's first child (``redis_spec``), so a killed
Redis is restarted on the same port and replays its AOF; clients reconnect. ``ManagedRedis`` is
the same server for tests and benchmarks that run without a supervisor.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from alpha_assets.layout import Layout
from alpha_assets.live.probes import LogKeyword, ProbeContext
from alpha_assets.live.process import ProcessSpec, RestartPolicy
from alpha_assets.processes import ManagedProcess, free_port, wait_until

READY_LOG = "Ready to accept connections"
INSTALL_HINT = "redis-server is not installed (apt-get install -y redis-server)"


def redis_binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                             else None)
    if found is None:
        raise FileNotFoundError(INSTALL_HINT)
    return found


def redis_installed() -> bool:
    try:
        redis_binary()
    except FileNotFoundError:
        return False
    return True


def redis_cmd(port: int, data_dir: Path) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--logfile", "", "--loglevel", "notice",
            # a soak's streams can hold minutes of a fast market; never evict them
            "--maxmemory-policy", "noeviction"]


def redis_dir(data_root: Path, run_id: str) -> Path:
    return Layout(Path(data_root)).redis_dir(run_id)


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
    """A redis-server process with AOF in ``data_dir``: start, kill (SIGKILL), restart on the same port.
    The soak's tests and benchmarks run it without a supervisor; the scale-out stack runs its Celery
    broker on it (with the stack's environment, so its sweep finds the server)."""

    def __init__(self, data_dir: Path, port: int | None = None, env: Mapping[str, str] | None = None) -> None:
        self.data_dir, self.port = Path(data_dir), port or free_port()
        self.log_path = self.data_dir / "redis.log"
        self.process = ManagedProcess("redis-server", redis_cmd(self.port, self.data_dir),
                                      os.environ if env is None else env, self.log_path)

    @property
    def url(self) -> str:
        return self.db_url(0)

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout_s: float = 20.0) -> ManagedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start()
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            wait_until(lambda: bool(client.ping()), timeout_s, f"redis-server on port {self.port}", self.process,
                       interval_s=0.05)
        except (TimeoutError, RuntimeError):
            self.stop()
            raise
        finally:
            client.close()
        return self

    def kill(self) -> None:
        """SIGKILL: what Redis acknowledged survives in the AOF."""
        if self.process.alive():
            self.process.signal_group(signal.SIGKILL)
            self.process.stop(grace_s=10)

    def stop(self) -> None:
        self.process.stop(grace_s=10)

    def alive(self) -> bool:
        return self.process.alive()

"""A local `redis-server` (the Debian package) for the profile's Celery broker and result backend.

Kept apart from the rest of the stack so it can become the one managed Redis of the project
when the live path's event bus brings its own (issue 12): same binary, loopback, free port, AOF
under a directory of the caller's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from alpha_assets.scale.processes import ManagedProcess, free_port, wait_until


def redis_binary() -> str | None:
    return shutil.which("redis-server")


class ManagedRedis:
    """redis-server on 127.0.0.1:<free port>, append-only file under `directory`."""

    def __init__(self, directory: Path, env: dict[str, str], port: int | None = None) -> None:
        binary = redis_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
        self.directory, self.port = Path(directory), port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
                # the broker holds unacknowledged steps: keep them across a restart of the server
                "--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes"]
        self.process = ManagedProcess("redis-server", argv, env, self.directory / "redis.log")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout_s: float = 30.0) -> ManagedRedis:
        import redis

        self.process.start()
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            wait_until(lambda: bool(client.ping()), timeout_s, f"redis-server on port {self.port}", self.process)
        finally:
            client.close()
        return self

    def stop(self) -> None:
        self.process.stop()

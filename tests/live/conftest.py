"""Live-path fixtures: a real Prometheus Pushgateway and a real redis-server on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alpha_assets.live.redis_server import ManagedRedis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    def __init__(self, url: str) -> None:
        self.url = url

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def value(self, name: str, **labels: str) -> float | None:
        """The value of `name` with (at least) these labels, None when absent."""
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, val = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                return float(val)
        return None


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        reason = "prometheus-pushgateway is not installed (apt-get install -y prometheus-pushgateway)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " and CI=true: the real gateway is required")
        pytest.skip(reason)
    port = free_port()
    log = Path(tmp_path_factory.mktemp("pushgateway")) / "pushgateway.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=fh, stderr=fh)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"pushgateway did not become ready; log: {log.read_text()[-2000:]}")
    try:
        yield Gateway(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def dead_port_url() -> str:
    """A loopback URL on which nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def start_redis(directory: Path) -> ManagedRedis:
    """A real redis-server (AOF on) on a free loopback port; without the binary a failure in CI,
    a skip that says how to install it elsewhere."""
    try:
        return ManagedRedis(directory).start()
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{exc} and CI=true: the real server is required")
        pytest.skip(f"redis-server is not installed (apt-get install redis-server, or make servers): {exc}")


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[ManagedRedis]:
    """A real redis-server (AOF on) on a free loopback port, stopped after the test."""
    server = start_redis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()

"""Real Prometheus, Alertmanager and Pushgateway processes on free loopback ports, for tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(names: Sequence[str], package: str) -> str:
    """The first of ``names`` on PATH; a failure in CI, a skip elsewhere, when none is."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    reason = f"{names[0]} is not installed (apt-get install -y {package})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " and CI=true: the real server is required")
    pytest.skip(reason)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str, **params: Any) -> Any:
        resp = httpx.get(self.url + path, params=params, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(name: str, cmd: list[str], port: int, workdir: Path, timeout_s: float = 60.0) -> Server:
    """Start ``cmd`` (listening on ``port``) and wait until ``/-/ready`` answers 200."""
    log = workdir / f"{name}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=workdir)
    server = Server(name, proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"{name} did not become ready (exit {proc.poll()}); log:\n{log.read_text()[-3000:]}")


def pushgateway(workdir: Path) -> Server:
    exe = binary(["prometheus-pushgateway", "pushgateway"], "prometheus-pushgateway")
    port = free_port()
    return start("pushgateway", [exe, f"--web.listen-address=127.0.0.1:{port}"], port, workdir)


def prometheus(workdir: Path, config: Path) -> Server:
    exe = binary(["prometheus"], "prometheus")
    port = free_port()
    (workdir / "tsdb").mkdir(exist_ok=True)
    return start("prometheus", [exe, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{port}"], port, workdir)


def alertmanager(workdir: Path, config: Path) -> Server:
    exe = binary(["prometheus-alertmanager", "alertmanager"], "prometheus-alertmanager")
    port = free_port()
    (workdir / "am").mkdir(exist_ok=True)
    # an empty cluster address turns off HA gossip, which would otherwise bind a fixed port (9094)
    return start("alertmanager", [exe, f"--config.file={config}", f"--storage.path={workdir / 'am'}",
                                  f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                 port, workdir)

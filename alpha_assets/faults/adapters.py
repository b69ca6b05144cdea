"""Every touch point with the live path (alpha_assets.live, the exchange server) in one place.

If the live path's API moves, only this module changes. What it relies on:
* ``run_soak(cfg, data_root, run_id, extra_hooks=[(at_s, fn(SoakContext))])``;
* ``SoakContext.supervisor`` (``event``, ``signal_child``, ``children[name].state/pid/proc``,
  ``stop_event``, ``timeline``), ``SoakContext.server`` (``drop_connections``, ``stall``,
  ``connection_count``, ``produced_trade_ids``, ``sent_trade_ids``, ``_history``) and
  ``SoakContext.exporter`` (``stats.export_count/error_count``);
* heartbeats at ``runtime/health/<name>.json``, watermarks, checkpoints, ``runtime/signals.db``
  and the JSONL spool under ``runtime/spool/signal``.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from alpha_assets.live.process import spawn
from alpha_assets.live.soak import Hook, ProgressHook, SoakConfig, SoakContext, SoakResult, run_soak
from alpha_assets.live.workers.common import heartbeat_path, read_json, watermark_path

__all__ = ["Hook", "ProgressHook", "SoakConfig", "SoakContext", "SoakResult", "run_soak", "heartbeat", "watermark",
           "signal_db", "spool_dir", "kill_worker", "child_state", "feed_log", "ManagedGateway"]


def heartbeat(data_root: Path, name: str) -> dict[str, Any]:
    return read_json(heartbeat_path(data_root, name))


def watermark(data_root: Path, run_id: str, symbol: str) -> int | None:
    wm = read_json(watermark_path(data_root, run_id, symbol)).get("closed_through_ms")
    return int(wm) if wm else None


def signal_db(data_root: Path) -> Path:
    return Path(data_root) / "runtime" / "signals.db"


def spool_dir(data_root: Path) -> Path:
    """Where the JSONL signal sink keeps its open minute parts."""
    return Path(data_root) / "runtime" / "spool" / "signal"


def kill_worker(ctx: SoakContext, name: str, sig: signal.Signals, label: str) -> int | None:
    """Signal a worker through the supervisor (it logs the Fault event); None when not running."""
    return ctx.supervisor.signal_child(name, sig, label=label)


def child_state(ctx: SoakContext, name: str) -> str:
    child = ctx.supervisor.children.get(name)
    return child.state if child is not None else "unknown"


def feed_log(server: Any) -> dict[str, list[tuple[int, int]]]:
    """(agg_trade_id, event_time_ms) of every trade the exchange server produced, per symbol."""
    out: dict[str, list[tuple[int, int]]] = {}
    history = getattr(server, "_history", {})
    for sym, ids in getattr(server, "produced_trade_ids", {}).items():
        hist = history.get(sym, {})
        out[sym] = [(int(t), int(hist[t]["E"]) if t in hist else -1) for t in ids]
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedGateway:
    """A real Prometheus Pushgateway process on a fixed loopback port that can be stopped and restarted;
    it dies with the process that started it (``spawn``)."""

    def __init__(self, log_path: Path, port: int | None = None, binary: str | None = None) -> None:
        found = binary or shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
        if found is None:
            raise FileNotFoundError("prometheus-pushgateway is not installed (apt-get install -y prometheus-pushgateway)")
        self.binary, self.port, self.log_path = found, port or free_port(), Path(log_path)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> ManagedGateway:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as fh:
            self.proc = spawn([self.binary, f"--web.listen-address=127.0.0.1:{self.port}"],
                                         stdout=fh, stderr=fh, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pushgateway on port {self.port} not ready in {timeout_s}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

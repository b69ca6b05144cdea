"""What every worker shares: its configuration file, stop signal, heartbeat and paths.

The configuration travels by one channel: the JSON file named by ``ALPHA_WORKER_CONFIG`` (the soak
writes it; the supervisor passes a whitelisted environment only). A worker started by hand without
one takes the v13 names ``RUN_ID``, ``ALPHA_DATA_ROOT``, ``V13_SINK``, ``V13_OUTPUT_DIR``,
``V13_INPUT_MODE`` and ``PAPER_ENABLE`` instead.
Workers talk to each other through the Redis streams of ``alpha_assets.live.bus`` at ``bus_url``.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alpha_assets.layout import Layout, RuntimeLayout
from alpha_assets.market.landing import minute_parts as minute_parts  # the landing zone names minutes

READY_KEYWORD = "Server started"
MINUTE_MS = 60_000


class WorkerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str = Field("live", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
    data_root: Path
    symbols: list[str] = Field(min_length=1)
    start_ms: int = Field(0, ge=0, description="wall time the run started: first landing minute to consume")
    ws_url: str = ""
    rest_url: str = ""
    bus_url: str = Field("redis://127.0.0.1:6379/0", description="Redis of the run's streams")
    sink: Literal["jsonl", "sqlite", "dual"] = "dual"
    sink_batch_n: int = Field(500, ge=1, le=1_000_000, description="SQLite/JSONL flush after this many rows")
    sink_flush_ms: int = Field(500, description="... or once the oldest pending row is this old (wall clock)")
    input_mode: Literal["raw"] = Field("raw", description="the signal worker reads raw events from the bus")
    book_join: Literal["event_time", "arrival"] = "event_time"
    paper: bool = True
    heartbeat_s: float = Field(1.0, gt=0, le=60)
    poll_s: float = Field(0.5, gt=0, le=60)
    lateness_ms: int = Field(3000, ge=0, le=120_000, description="lander: how long a minute stays open")
    bus_buffer_max: int = Field(200_000, ge=100, le=10_000_000,
                                description="harvest: events held while Redis is away; beyond, backfill")
    checkpoint_interval_s: float = Field(1.0, gt=0, le=600, description="signal: engine state + position")
    read_timeout_s: float = Field(10.0, gt=0, le=600)
    ws_client: dict[str, Any] = Field(default_factory=dict, description="harvest: WsClientConfig overrides")
    lander_buffer_max: int = Field(1_000_000, ge=1_000, le=50_000_000,
                                   description="lander: entries held in open minutes; beyond, the oldest land early")
    report_interval_s: float = Field(15.0, gt=0, le=3600)
    engine: dict[str, Any] = Field(default_factory=dict, description="EngineConfig overrides")
    output_dir: Path | None = Field(None, description="the sinks' runtime directory; None = <data_root>/runtime")

    @field_validator("ws_client")
    @classmethod
    def _client_fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        """Bad feed-client settings fail when the configuration loads, naming the field."""
        from alpha_assets.market.ws_client import WsClientConfig

        WsClientConfig.model_validate({"url": "ws://127.0.0.1:1/stream?streams=btcusdt@aggTrade", **v})
        return v

    @property
    def runtime_dir(self) -> Path:
        return self.output_dir or self.layout.runtime_dir

    @property
    def layout(self) -> Layout:
        return Layout(self.data_root)

    @property
    def runtime(self) -> RuntimeLayout:
        return RuntimeLayout(self.runtime_dir)

    def heartbeat_path(self, name: str) -> Path:
        return heartbeat_path(self.data_root, name)

    def checkpoint_dir(self) -> Path:
        return self.runtime.checkpoints(self.run_id)

    def watermark(self, symbol: str) -> Path:
        return watermark_path(self.data_root, self.run_id, symbol)

    def engine_overrides(self) -> dict[str, Any]:
        """The engine overrides of the run with the book-join mode in them."""
        return {**self.engine, "book_join": self.book_join}


def heartbeat_path(data_root: Path, name: str) -> Path:
    return Layout(Path(data_root)).heartbeat(name)


def watermark_path(data_root: Path, run_id: str, symbol: str) -> Path:
    """The lander's progress: minutes ending at or before ``closed_through_ms`` are final."""
    return Layout(Path(data_root)).watermark(run_id, symbol)


def load_config(env: Mapping[str, str] | None = None) -> WorkerConfig:
    env = os.environ if env is None else env
    path = env.get("ALPHA_WORKER_CONFIG", "")
    if path:
        return WorkerConfig.model_validate_json(Path(path).read_text())
    raw: dict[str, Any] = {}
    for var, field in (("RUN_ID", "run_id"), ("ALPHA_DATA_ROOT", "data_root"), ("V13_OUTPUT_DIR", "output_dir")):
        if env.get(var):
            raw[field] = env[var]
    for var, field in (("V13_SINK", "sink"), ("V13_INPUT_MODE", "input_mode")):
        if env.get(var):
            raw[field] = env[var].strip().lower()
    if env.get("PAPER_ENABLE"):
        raw["paper"] = env["PAPER_ENABLE"].strip() not in ("0", "false", "")
    return WorkerConfig.model_validate(raw)


class StopFlag:
    """SIGTERM/SIGINT → finish the current step, checkpoint, exit 0."""

    def __init__(self) -> None:
        self.event = threading.Event()
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, signum: int, _frame: object) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


class Heartbeat:
    """Writes ``{ts, pid, name, **counters}`` atomically at most every ``interval_s``."""

    def __init__(self, path: Path, name: str, interval_s: float) -> None:
        self.path, self.name, self.interval_s = path, name, interval_s
        self._last = 0.0
        self.started = time.time()

    def due(self) -> bool:
        """Whether the next ``beat`` would write: a hot loop builds its counters only then."""
        return time.time() - self._last >= self.interval_s

    def beat(self, counters: dict[str, Any], force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        body = {"name": self.name, "pid": os.getpid(), "ts": now, "uptime_s": round(now - self.started, 3),
                **counters}
        write_quick(self.path, json.dumps(body, default=str).encode())


def write_quick(path: Path, data: bytes) -> None:
    """Temp name + rename without fsync: readers never see half a file and a killed process loses
    nothing the OS has; a worker's hot loop does not wait for the disk (heartbeats, checkpoints)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def ready(name: str, detail: str = "") -> None:
    """Start-up is done. What it made (modules, compiled kernels, restored state) lives as long as
    the process, so it is frozen out of the collector's reach: full collections walking it stalled
    the signal worker's loop (bench/live.py 10x on a quiet machine, tick→signal p99: 278 ms in one run
    before; 16-135 ms in four runs after)."""
    gc.freeze()
    print(f"{READY_KEYWORD}: {name} {detail}".rstrip(), flush=True)



"""The soak run: exchange feed + supervised harvest → signal → broker → report for ``minutes``.

``run_soak(cfg, data_root, run_id)`` starts the feed (the loopback exchange simulator for
``feed=simulator``, a replayed capture for ``feed=replay``, the real endpoint for ``feed=binance``),
the supervisor and the Pushgateway exporter; runs the fault plan's hooks at their times; stops
everything in reverse order; writes ``artifacts/run_logs/run_manifest_<run_id>.json`` and
``artifacts/source_manifest_<run_id>.json``; returns a ``SoakResult`` with the figures and the
pass/fail of each acceptance check (v13 TASK-07/07A thresholds).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alpha_assets.live.metric_names import DEGRADED, HEALTHY, SOAK_ACTIVE
from alpha_assets.live.probes import AllOf, FilesRecent, HeartbeatFresh, LogKeyword
from alpha_assets.live.process import ProcessSpec, RestartPolicy, child_environment, python_module_cmd
from alpha_assets.live.pushgateway import PushgatewayExporter, resolve_pushgateway_url
from alpha_assets.live.supervisor import Supervisor, recoveries
from alpha_assets.live.workers.common import READY_KEYWORD, heartbeat_path, read_json
from alpha_assets.manifests import write_run_manifest, write_source_manifest

WORKERS = ("harvest", "signal", "broker", "report")
RSS_LIMIT_MB = 600
OPEN_FILES_LIMIT = 256
RECONNECT_LIMIT = 3


class FaultSpec(BaseModel):
    """One fault at ``at_s`` seconds into the run."""

    model_config = ConfigDict(extra="forbid")
    at_s: float = Field(ge=0)
    action: Literal["terminate", "kill", "drop_feed", "stall_feed", "malformed", "pushgateway_outage"]
    target: str = Field("signal", description="process name for terminate/kill")
    duration_s: float = Field(0.0, ge=0, le=3600, description="stall/outage length")
    count: int = Field(1, ge=1, le=10_000, description="malformed messages to send")


class SoakConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: float = Field(60.0, gt=0, le=24 * 60)
    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"], min_length=1)
    sink: Literal["jsonl", "sqlite", "dual"] = "dual"
    input_mode: Literal["raw", "preview"] = "raw"
    feed: Literal["simulator", "binance", "replay"] = "simulator"
    export_interval_s: float = Field(60.0, gt=0, le=3600)
    health_interval_s: float = Field(10.0, gt=0, le=600)
    pushgateway_url: str = Field("", description="empty: ALPHA_PUSHGATEWAY_URL, then TIMESERIES_URL (v13)")
    seed: int = Field(7, ge=0, le=2**31 - 1)
    fault_plan: list[FaultSpec] = Field(default_factory=list)
    restart_backoff_s: tuple[float, ...] = Field((10.0, 30.0), description="delay before restart 1, 2, ...")
    restart_budget_reset_s: float | None = Field(
        300.0, gt=0, le=24 * 3600, description="healthy this long after a restart: the back-off budget is whole again")
    ready_timeout_s: float = Field(120.0, gt=0, le=3600)
    stop_grace_s: float = Field(10.0, ge=0, le=600)
    lateness_ms: int = Field(3000, ge=0, le=120_000)
    report_interval_s: float = Field(15.0, gt=0, le=3600)
    read_timeout_s: float = Field(10.0, gt=0, le=600)
    replay_capture: str = Field("", description="feed=replay: path of a raw Binance WS capture")
    replay_speed: float = Field(1.0, gt=0, le=1000)
    binance_ws: str = "wss://fstream.binance.com"
    paper: bool = True
    engine: dict[str, Any] = Field(default_factory=dict)
    malformed_rate: float = Field(0.0, ge=0, le=0.5, description="share of feed messages the simulator corrupts "
                                  "(alpha_assets.market.malformed); dead letters must then equal what was injected")
    malformed_seed: int = Field(0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _malformed_needs_simulator(self) -> SoakConfig:
        if self.malformed_rate > 0 and self.feed == "binance":
            raise ValueError("malformed_rate > 0 needs the loopback exchange (feed=simulator or replay), not feed=binance")
        return self

    @field_validator("symbols")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        out = [s.strip().upper() for s in v]
        bad = [s for s in out if not s.isalnum() or not 4 <= len(s) <= 20]
        if bad:
            raise ValueError(f"symbols must be 4-20 letters/digits, got {bad}")
        return out

    @field_validator("restart_backoff_s")
    @classmethod
    def _backoff(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(x < 0 or x > 3600 for x in v):
            raise ValueError(f"restart_backoff_s values must be in [0, 3600], got {v}")
        return v


def soak_config_from(values: dict[str, Any]) -> SoakConfig:
    """Build from a run-config mapping (the Dagster op's), ignoring nothing silently."""
    return SoakConfig.model_validate(values)


@dataclass
class SoakContext:
    """What a fault hook can reach."""

    cfg: SoakConfig
    supervisor: Supervisor
    server: Any | None
    exporter: PushgatewayExporter
    data_root: Path
    run_id: str
    injected: list[dict[str, Any]] = field(default_factory=list)
    restores: list[tuple[float, Callable[[], None]]] = field(default_factory=list)

    def run_due_restores(self) -> None:
        now = time.monotonic()
        for item in [r for r in self.restores if r[0] <= now]:
            self.restores.remove(item)
            item[1]()
            self.supervisor.event("FaultCleared", "pushgateway")


Hook = tuple[float, Callable[[SoakContext], None]]


def fault_hooks(plan: list[FaultSpec]) -> list[Hook]:
    """The fault plan as timed hooks (the fault-injection issue can add its own)."""
    hooks: list[Hook] = []
    for f in plan:
        def act(ctx: SoakContext, f: FaultSpec = f) -> None:
            ctx.injected.append({"at_s": f.at_s, "action": f.action, "target": f.target, "ts": time.time()})
            if f.action in ("terminate", "kill"):
                ctx.supervisor.signal_child(f.target, signal.SIGTERM if f.action == "terminate" else signal.SIGKILL)
                return
            ctx.supervisor.event("Fault", "feed" if "feed" in f.action else "pushgateway", action=f.action)
            if f.action == "drop_feed" and ctx.server is not None:
                ctx.server.drop_connections()
            elif f.action == "stall_feed" and ctx.server is not None:
                ctx.server.stall(f.duration_s)
            elif f.action == "malformed" and ctx.server is not None:
                ctx.server.send_malformed(f.count)
            elif f.action == "pushgateway_outage":
                saved = ctx.exporter.url
                ctx.exporter.url = "http://127.0.0.1:9"  # discard port: nothing listens
                ctx.restores.append((time.monotonic() + f.duration_s, lambda: setattr(ctx.exporter, "url", saved)))
        hooks.append((f.at_s, act))
    return hooks


@dataclass
class SoakResult:
    run_id: str
    figures_: dict[str, Any]
    checks: dict[str, bool]
    run_manifest: Path
    source_manifest: Path
    timeline: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def figures(self) -> dict[str, Any]:
        return dict(self.figures_)


def _worker_specs(cfg: SoakConfig, data_root: Path, run_id: str, cfg_file: Path) -> list[ProcessSpec]:
    runtime = data_root / "runtime"
    env = {"RUN_ID": run_id, "ALPHA_DATA_ROOT": str(data_root), "V13_SINK": cfg.sink,
           "V13_OUTPUT_DIR": str(runtime), "V13_INPUT_MODE": cfg.input_mode,
           "PAPER_ENABLE": "1" if cfg.paper else "0", "ALPHA_WORKER_CONFIG": str(cfg_file)}
    for name in ("ALPHA_SHARED_DIR", "ALPHA_CONFIG"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    policy = RestartPolicy(backoff_s=cfg.restart_backoff_s, ready_timeout_s=cfg.ready_timeout_s,
                           budget_reset_s=cfg.restart_budget_reset_s)
    beat_age = max(15.0, 3 * cfg.health_interval_s)
    landing = data_root / "landing"
    files_window = 60.0 + cfg.lateness_ms / 1000 + 15  # one minute file per minute, after the lateness
    health = {
        "harvest": AllOf((HeartbeatFresh(heartbeat_path(data_root, "harvest"), beat_age, ("queue_dropped",)),
                          FilesRecent(landing / "raw", "date=*/symbol=*/trades_*.parquet", files_window),
                          FilesRecent(landing / "preview", "date=*/symbol=*/preview_*.parquet", files_window))),
        "signal": HeartbeatFresh(heartbeat_path(data_root, "signal"), beat_age, ("queue_dropped",)),
        "broker": HeartbeatFresh(heartbeat_path(data_root, "broker"), beat_age),
        "report": AllOf((HeartbeatFresh(heartbeat_path(data_root, "report"), beat_age),
                         FilesRecent(data_root / "logs" / "report", "summary_*.json", 3 * cfg.report_interval_s + 5))),
    }
    return [ProcessSpec(name, python_module_cmd(f"alpha_assets.live.workers.{name}"), env=env,
                        ready_probe=LogKeyword(READY_KEYWORD), health_probe=health[name], restart_policy=policy)
            for name in WORKERS]


def _start_feed(cfg: SoakConfig) -> tuple[Any | None, str, str]:
    """(server or None, ws stream url, REST base)."""
    from alpha_assets.market.ws_client import BINANCE_UM_REST, combined_stream_url

    if cfg.feed == "binance":
        return None, combined_stream_url(cfg.binance_ws, cfg.symbols), BINANCE_UM_REST
    from alpha_assets.market.exchange_server import ExchangeServer, replay_sources, simulator_sources

    now = int(time.time() * 1000)
    if cfg.feed == "replay":
        if not cfg.replay_capture:
            raise ValueError("feed=replay needs replay_capture (path of a raw WS capture)")
        sources = replay_sources(cfg.replay_capture, cfg.symbols, now, cfg.replay_speed)
    else:
        sources = simulator_sources(cfg.symbols, cfg.seed, now)
    from alpha_assets.market.injection import MalformedPlan

    server = ExchangeServer(sources, malformed=MalformedPlan(rate=cfg.malformed_rate, seed=cfg.malformed_seed)).start()
    return server, server.stream_url(cfg.symbols), server.rest_url


def _collect(sup: Supervisor, data_root: Path) -> dict[str, Any]:
    beats = {n: read_json(heartbeat_path(data_root, n)) for n in WORKERS}
    st = sup.status()
    h, s, b = beats["harvest"], beats["signal"], beats["broker"]
    sink = s.get("sink", {}) or {}
    j_rows = (sink.get("jsonl") or {}).get("rows_in")
    q_rows = (sink.get("sqlite") or {}).get("rows_in")
    parity = abs(j_rows - q_rows) / max(j_rows, q_rows, 1) if isinstance(j_rows, int) and isinstance(q_rows, int) else 0
    return {
        "signals_total": s.get("signals_total", 0),
        "parity_diff_ratio": parity,
        "queue_dropped": int(h.get("queue_dropped", 0) or 0) + int(s.get("queue_dropped", 0) or 0),
        "reconnect_count": h.get("reconnect_count", 0),
        "deadletter": h.get("deadletter", 0),
        "trades_landed": h.get("trades_landed", 0),
        "orders": b.get("orders", 0),
        "restarts": {n: v["restarts"] for n, v in st.items()},
        "restarts_total": sum(v["restarts"] for v in st.values()),
        "rss_mb": {n: v["max_rss_mb"] for n, v in st.items()},
        "open_files": {n: v["max_open_files"] for n, v in st.items()},
        # green = running and its last probe passed; no verdict yet (starting) = no sample
        HEALTHY.name: {n: int(bool(v["healthy"]) and v["state"] == "ready")
                       for n, v in st.items() if v["healthy"] is not None},
        DEGRADED.name: {n: int(v["state"] == "degraded") for n, v in st.items()},
        SOAK_ACTIVE.name: int(not sup.stop_event.is_set()),  # 0 from shutdown on: stopped workers page no one
    }


def _drain_signals(sup: Supervisor, data_root: Path, run_id: str, cfg_file: Path, cfg: SoakConfig) -> None:
    """After the harvester stopped: the signal worker consumes the last landed minutes and flushes
    the engine, so the sinks hold a signal for every landed trade (live = batch on the partition)."""
    spec = next(s for s in _worker_specs(cfg, data_root, run_id, cfg_file) if s.name == "signal")
    log_dir = data_root / "logs" / "signal"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup.event("DrainStart", "signal")
    with open(log_dir / "drain.log", "ab") as out:
        try:
            done = subprocess.run([*spec.cmd, "--drain"], env=child_environment(spec.env), stdout=out, stderr=out,
                                  timeout=max(60.0, cfg.stop_grace_s * 6), check=False)
            sup.event("DrainEnd", "signal", returncode=done.returncode)
        except subprocess.TimeoutExpired:
            sup.event("Alert", "signal", reason="drain timed out")


ProgressHook = Callable[[dict[str, Any]], None]
PROGRESS_INTERVAL_S = 60.0


def _progress(sup: Supervisor, data_root: Path, exporter: PushgatewayExporter, started: float,
              cfg: SoakConfig) -> dict[str, Any]:
    """The figures so far, for a progress line: signals, lag, restarts, exports."""
    now = _collect(sup, data_root)
    signal_beat = read_json(heartbeat_path(data_root, "signal"))
    return {
        "elapsed_s": round(time.time() - started, 1), "minutes": cfg.minutes,
        "signals_total": int(now["signals_total"] or 0), "trades_landed": int(now["trades_landed"] or 0),
        "orders": int(now["orders"] or 0), "lag_ms": signal_beat.get("last_latency_ms"),
        "restarts_total": int(now["restarts_total"]), "exports": exporter.stats.export_count,
        "export_errors": exporter.stats.error_count, "workers_healthy": sum(now["healthy"].values()),
        "workers": len(now["healthy"]),
    }


def run_soak(cfg: SoakConfig, data_root: Path, run_id: str, *, extra_hooks: list[Hook] | None = None,
             on_progress: ProgressHook | None = None, progress_interval_s: float = PROGRESS_INTERVAL_S,
             stop: threading.Event | None = None) -> SoakResult:
    """``on_progress`` gets the figures so far once the workers are ready and every
    ``progress_interval_s`` after; ``stop``, when set (from any thread), ends the run early in order."""
    data_root = Path(data_root).resolve()
    started = time.time()
    start_ms = int(started * 1000)
    server, ws_url, rest_url = _start_feed(cfg)
    cfg_file = data_root / "runtime" / "soak" / f"worker_config_{run_id}.json"
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    for name in WORKERS:  # heartbeats of an earlier run must not look fresh
        heartbeat_path(data_root, name).unlink(missing_ok=True)
    worker_cfg = {"run_id": run_id, "data_root": str(data_root), "symbols": cfg.symbols, "start_ms": start_ms,
                  "ws_url": ws_url, "rest_url": rest_url, "sink": cfg.sink, "input_mode": cfg.input_mode,
                  "paper": cfg.paper, "lateness_ms": cfg.lateness_ms, "read_timeout_s": cfg.read_timeout_s,
                  "report_interval_s": cfg.report_interval_s, "engine": cfg.engine}
    cfg_file.write_text(json.dumps(worker_cfg, indent=2))
    sup = Supervisor(_worker_specs(cfg, data_root, run_id, cfg_file), data_root,
                     health_interval_s=cfg.health_interval_s, stop_grace_s=cfg.stop_grace_s)
    if stop is not None:
        sup.stop_event = stop
    url = resolve_pushgateway_url(cfg.pushgateway_url or _configured_pushgateway())
    exporter = PushgatewayExporter(url, run_id=run_id)
    ctx = SoakContext(cfg, sup, server, exporter, data_root, run_id)
    hooks = [(at, (lambda s, fn=fn: fn(ctx))) for at, fn in fault_hooks(cfg.fault_plan) + list(extra_hooks or [])]
    sup.install_signal_handlers()
    sup.event("RunStart", "", run_id=run_id, feed=cfg.feed, ws_url=ws_url, sink=cfg.sink, pushgateway=url or "off")
    duration_s = cfg.minutes * 60
    try:
        sup.start_all()
        exporter.start(lambda: _collect(sup, data_root), cfg.export_interval_s)
        sup.wait_ready(timeout_s=cfg.ready_timeout_s * (1 + len(cfg.restart_backoff_s)))
        remaining = max(0.0, duration_s - (time.time() - started))
        # hook times count from the start of the run, not from readiness
        elapsed = time.time() - started
        next_progress = [time.monotonic()]

        def poll() -> None:
            ctx.run_due_restores()
            if on_progress is not None and time.monotonic() >= next_progress[0]:
                next_progress[0] += progress_interval_s
                try:
                    on_progress(_progress(sup, data_root, exporter, started, cfg))
                except Exception as exc:  # a progress reader must never stop the soak
                    sup.alert("", "progress hook failed", error=f"{type(exc).__name__}: {exc}")

        sup.run(remaining, hooks=[(max(0.0, at - elapsed), fn) for at, fn in hooks], on_poll=poll)
    finally:
        if server is not None and server.injected:
            # no new malformed messages; those already sent reach the harvester before it stops
            server.pause_malformed()
            time.sleep(1.0)
        shutdown_order = sup.graceful_shutdown()
        sup.restore_signal_handlers()
        if server is not None:
            server.stop()
            sup.event("Stop", "exchange", drops=server.stats.drops)
        _drain_signals(sup, data_root, run_id, cfg_file, cfg)
        stats = exporter.stop(final=_collect(sup, data_root))
    ended = time.time()
    figures, checks, extra = _figures(cfg, sup, data_root, run_id, stats, started, ended, server, shutdown_order)
    manifest = {
        "started_utc": _iso(started), "ended_utc": _iso(ended), "duration_s": round(ended - started, 3),
        "mode": {"feed": cfg.feed, "input_mode": cfg.input_mode, "sink": cfg.sink, "paper": cfg.paper},
        "config": cfg.model_dump(mode="json"),
        "processes": {n: {k: v for k, v in p.items()} for n, p in sup.status().items()},
        "export_count": stats.export_count, "error_count": stats.error_count, "export": stats.as_dict(),
        "pushgateway": url or None,
        "alerts": sup.alerts, "harvester_slo": extra["harvester_slo"],
        "max_rss_mb": figures["max_rss_mb"], "max_open_files": figures["max_open_files"],
        "shutdown_order": shutdown_order, "figures": figures, "checks": checks, "passed": all(checks.values()),
        "faults_injected": ctx.injected, "recoveries": recoveries(sup.timeline), "timeline": [e for e in sup.timeline if e["event"] != "Health"],
    }
    run_path = write_run_manifest(data_root, run_id, manifest)
    src_path = write_source_manifest(
        data_root, run_id, symbols=cfg.symbols, session_window=(int(started * 1000), int(ended * 1000)),
        endpoint=ws_url, input_mode=cfg.input_mode, watch=str(data_root / "landing" / "raw"),
        feature_dir=str(data_root / "runtime"), config=cfg.model_dump(mode="json"))
    return SoakResult(run_id, figures, checks, run_path, src_path, list(sup.timeline))


def _figures(cfg: SoakConfig, sup: Supervisor, data_root: Path, run_id: str, stats: Any, started: float,
             ended: float, server: Any | None, shutdown_order: list[str]) -> tuple[dict, dict, dict]:
    beats = {n: read_json(heartbeat_path(data_root, n)) for n in WORKERS}
    h, s, b = beats["harvest"], beats["signal"], beats["broker"]
    st = sup.status()
    runtime = data_root / "runtime"
    jsonl_files = sorted((runtime / "ready" / "signal").glob("*/signals_*.jsonl"))
    run_files = [p for p in jsonl_files if p.stat().st_mtime >= started - 1]
    per_symbol = {sym: sum(1 for p in run_files if p.parent.name == sym) for sym in cfg.symbols}
    jsonl_rows = sqlite_rows = None
    if cfg.sink in ("jsonl", "dual"):
        from alpha_assets.sinks.readers import read_jsonl_signals
        jsonl_rows = read_jsonl_signals(runtime, run_id=run_id).height
    if cfg.sink in ("sqlite", "dual") and (runtime / "signals.db").exists():
        con = sqlite3.connect(runtime / "signals.db")
        try:
            sqlite_rows = con.execute("SELECT COUNT(*) FROM signals WHERE run_id = ?", (run_id,)).fetchone()[0]
        except sqlite3.Error:
            sqlite_rows = 0
        finally:
            con.close()
    dead_files = [p for p in (data_root / "landing" / "deadletter").glob("date=*/symbol=*/*.parquet")
                  if p.stat().st_mtime >= started - 1]
    injected, match = _deadletters_vs_injected(data_root, dead_files, server)
    duration = ended - started
    # one push at start, then one per interval while the exporter ran (the final push is extra)
    export_expected = 1 + math.floor(stats.active_s / cfg.export_interval_s) if stats.export_count or stats.error_count else 0
    figures: dict[str, Any] = {
        "run_id": run_id, "duration_s": round(duration, 3), "minutes": cfg.minutes,
        "export_count": stats.export_count, "error_count": stats.error_count, "export_expected": export_expected,
        "signals_total": int(s.get("signals_total", 0) or 0), "jsonl_rows": jsonl_rows, "sqlite_rows": sqlite_rows,
        "jsonl_ready_files": len(run_files), "jsonl_ready_files_min_per_symbol": min(per_symbol.values()),
        "parity_diff_rows": abs(jsonl_rows - sqlite_rows) if jsonl_rows is not None and sqlite_rows is not None else None,
        "queue_dropped": int(h.get("queue_dropped", 0) or 0) + int(s.get("queue_dropped", 0) or 0),
        "reconnect_count": int(h.get("reconnect_count", 0) or 0),
        "deadletter": int(h.get("deadletter", 0) or 0), "deadletter_files": len(dead_files),
        "malformed_injected": len(injected), "deadletter_unexplained": len(match.unexpected),
        "malformed_not_dead_lettered": len(match.missing) + len(match.wrong_reason) + len(match.landed_as_dead),
        "trade_gaps": int(h.get("trade_gaps", 0) or 0), "gap_trades_unfilled": int(h.get("gap_trades_unfilled", 0) or 0),
        "late_rows": int(h.get("late_rows", 0) or 0),
        "trades_landed": int(h.get("trades_landed", 0) or 0), "minutes_landed": int(h.get("minutes_landed", 0) or 0),
        "orders": int(b.get("orders", 0) or 0), "fills": int(b.get("filled", 0) or 0),
        "restarts_total": sum(v["restarts"] for v in st.values()),
        "degraded": sum(1 for e in sup.timeline if e["event"] == "Degraded"),
        "max_rss_mb": max((v["max_rss_mb"] for v in st.values()), default=0.0),
        "max_open_files": max((v["max_open_files"] for v in st.values()), default=0),
        "alerts": len(sup.alerts),
        "shutdown_reversed": shutdown_order == list(reversed(WORKERS)),
        "feed_drops": server.stats.drops if server is not None else 0,
    }
    expected_minutes = max(0, int(duration // 60) - 1)
    checks = {
        "export_count": stats.export_count >= max(1, export_expected),
        "error_count_zero": stats.error_count == 0 or any(f.action == "pushgateway_outage" for f in cfg.fault_plan),
        "queue_dropped_zero": figures["queue_dropped"] == 0,
        f"reconnect_count_le_{RECONNECT_LIMIT}": figures["reconnect_count"] <= RECONNECT_LIMIT,
        # every dead letter comes from an injected malformed message, every injection left its own
        # (nothing injected: no dead letter at all)
        "deadletters_as_injected": match.ok and (bool(injected) or (figures["deadletter"] == 0 and not dead_files)),
        f"rss_lt_{RSS_LIMIT_MB}mb": figures["max_rss_mb"] < RSS_LIMIT_MB,
        f"open_files_lt_{OPEN_FILES_LIMIT}": figures["max_open_files"] < OPEN_FILES_LIMIT,
        "signals_produced": figures["signals_total"] > 0,
        "jsonl_rotates_every_minute": cfg.sink == "sqlite" or min(per_symbol.values()) >= expected_minutes,
        "sqlite_has_rows": cfg.sink == "jsonl" or (sqlite_rows or 0) > 0,
        "no_degraded": figures["degraded"] == 0,
        "shutdown_reversed": figures["shutdown_reversed"],
    }
    lat = h.get("latency_p99_ms")
    extra = {"harvester_slo": {k: h.get(k) for k in ("messages", "trades", "books", "reconnect_count", "queue_dropped",
                                                     "deadletter", "trade_gaps", "gap_trades_filled",
                                                     "gap_trades_unfilled", "book_gaps", "watchdog_timeouts",
                                                     "minutes_landed", "late_rows")} | {"latency_p99_ms": lat}}
    return figures, checks, extra


def _deadletters_vs_injected(data_root: Path, dead_files: list[Path], server: Any | None) -> tuple[list, Any]:
    """The simulator's record of malformed messages and its match against the landed dead letters."""
    import polars as pl

    from alpha_assets.market.injection import match_deadletters

    injected = list(server.injected) if server is not None else []
    rows: list[dict[str, Any]] = []
    for f in dead_files:
        try:
            rows += pl.read_parquet(f).to_dicts()
        except Exception:  # noqa: BLE001 - an unreadable file is a mismatch, reported as such
            rows.append({"reason": "unreadable_file", "payload": str(f)})
    return injected, match_deadletters(injected, rows)


def _configured_pushgateway() -> str:
    """``pushgateway.url`` of alpha_assets.yaml ("" when unset or the file is unreadable)."""
    try:
        from alpha_assets.settings import settings

        return settings().pushgateway.url
    except Exception:  # the soak must not fail on the project file; env names still apply
        return ""


def main(argv: list[str] | None = None) -> int:
    """v13-style entry point: ``python -m alpha_assets.live.soak --minutes 30 --sink jsonl``."""
    import argparse
    import uuid

    ap = argparse.ArgumentParser(description="Run the supervised live soak (harvest → signal → broker → report).")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    ap.add_argument("--sink", default="dual", choices=["jsonl", "sqlite", "dual"])
    ap.add_argument("--input-mode", default=os.environ.get("V13_INPUT_MODE", "raw"), choices=["raw", "preview"])
    ap.add_argument("--feed", default="simulator", choices=["simulator", "binance", "replay"])
    ap.add_argument("--replay-capture", default="")
    ap.add_argument("--export-interval-s", type=float, default=60.0)
    ap.add_argument("--health-interval-s", type=float, default=10.0)
    ap.add_argument("--pushgateway-url", default="")
    ap.add_argument("--run-id", default="")
    ap.add_argument("--data-root", default="")
    args = ap.parse_args(argv)
    from alpha_assets.paths import data_root as default_root

    cfg = SoakConfig(minutes=args.minutes, symbols=args.symbols.split(","), sink=args.sink,
                     input_mode=args.input_mode, feed=args.feed, replay_capture=args.replay_capture,
                     export_interval_s=args.export_interval_s, health_interval_s=args.health_interval_s,
                     pushgateway_url=args.pushgateway_url)
    run_id = args.run_id or time.strftime("soak_%Y%m%d_%H%M%S", time.gmtime()) + "_" + uuid.uuid4().hex[:6]
    res = run_soak(cfg, Path(args.data_root) if args.data_root else default_root(), run_id)
    print(json.dumps({"run_id": run_id, "passed": res.passed, "checks": res.checks, "figures": res.figures(),
                      "run_manifest": str(res.run_manifest)}, indent=2, default=str))
    return 0 if res.passed else 1


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds")


if __name__ == "__main__":
    raise SystemExit(main())

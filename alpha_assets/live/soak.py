"""The soak run: exchange feed → Redis streams → supervised harvest, lander, signal, broker, report.

``run_soak(cfg, data_root, run_id)`` starts the feed (a loopback exchange for ``feed=simulator`` or
``replay``, the endpoint of ``feed_ws_url`` for ``external``/``binance``), the supervisor with a local
``redis-server`` as its first child (unless ``bus_url`` names one), the latency collector and the
Pushgateway exporter; runs the fault plan's hooks at their times; then drains (``soak_drain``): the
exchange stops sending, the harvester gets every trade sent onto the bus and stops, the soak marks where the streams end, and lander, signal worker and broker each consume up
to there and exit, so the landing zone, both sinks and the outbox hold everything the feed sent.
It writes ``artifacts/run_logs/run_manifest_<run_id>.json`` and ``artifacts/source_manifest_<run_id>.json``
and returns a ``SoakResult`` with the figures (latency p50/p95/p99/max per hop among them) and
the pass/fail of each acceptance check.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpha_assets.live.latency import LatencyCollector, SendTimes
from alpha_assets.live.probes import AllOf, FilesRecent, HeartbeatFresh, LogKeyword
from alpha_assets.live.process import ProcessSpec, python_module_cmd
from alpha_assets.live.pushgateway import PushgatewayExporter, resolve_pushgateway_url
from alpha_assets.live.redis_server import free_port, redis_spec
from alpha_assets.live.sink_parity import SinkParity
from alpha_assets.live.soak_config import FaultSpec, SoakConfig, soak_config_from
from alpha_assets.live.soak_drain import drain
from alpha_assets.live.soak_figures import (
    OPEN_FILES_LIMIT,
    RECONNECT_LIMIT,
    RSS_LIMIT_MB,
    WORKERS,
    live_figures,
    soak_figures,
)
from alpha_assets.live.supervisor import Supervisor, recoveries
from alpha_assets.live.workers.common import READY_KEYWORD, heartbeat_path, read_json
from alpha_assets.manifests import write_run_manifest, write_source_manifest

__all__ = ["FaultSpec", "Hook", "OPEN_FILES_LIMIT", "RECONNECT_LIMIT", "RSS_LIMIT_MB", "SoakConfig", "SoakContext",
           "SoakResult", "WORKERS", "run_soak", "soak_config_from"]


@dataclass
class SoakContext:
    """What a fault hook can reach."""

    cfg: SoakConfig
    supervisor: Supervisor
    server: Any | None
    exporter: PushgatewayExporter
    data_root: Path
    run_id: str
    bus_url: str = ""
    injected: list[dict[str, Any]] = field(default_factory=list)


Hook = tuple[float, Callable[[SoakContext], None]]


@dataclass
class SoakResult:
    run_id: str
    figures_: dict[str, Any]
    checks: dict[str, bool]
    run_manifest: Path
    source_manifest: Path
    timeline: list[dict[str, Any]]
    latency: LatencyCollector | None = None  # every sample, for callers in this process (benchmarks)

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def figures(self) -> dict[str, Any]:
        return dict(self.figures_)


def worker_specs(cfg: SoakConfig, data_root: Path, run_id: str, cfg_file: Path, redis_port: int | None
                 ) -> list[ProcessSpec]:
    runtime = data_root / "runtime"
    env = {"RUN_ID": run_id, "ALPHA_DATA_ROOT": str(data_root), "V13_SINK": cfg.sink,
           "V13_OUTPUT_DIR": str(runtime), "V13_INPUT_MODE": cfg.input_mode,
           "PAPER_ENABLE": "1" if cfg.paper else "0", "ALPHA_WORKER_CONFIG": str(cfg_file)}
    for name in ("ALPHA_SHARED_DIR", "ALPHA_CONFIG"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    policy = cfg.restart_policy()
    beat_age = max(15.0, 3 * cfg.health_interval_s)
    landing = data_root / "landing"
    files_window = 60.0 + cfg.lateness_ms / 1000 + 15  # one minute file per minute, after the lateness

    def fresh(name: str, zero: tuple[str, ...] = ()) -> HeartbeatFresh:
        return HeartbeatFresh(heartbeat_path(data_root, name), beat_age, zero)

    health = {
        "harvest": fresh("harvest", ("queue_dropped",)),
        "lander": AllOf((fresh("lander", ("landing_failing",)), FilesRecent(landing / "raw", "date=*/symbol=*/trades_*.parquet", files_window),
                         FilesRecent(landing / "preview", "date=*/symbol=*/preview_*.parquet", files_window))),
        "signal": fresh("signal", ("queue_dropped", "sink_failing")),
        "broker": fresh("broker"),
        "report": AllOf((fresh("report"),
                         FilesRecent(data_root / "logs" / "report", "summary_*.json", 3 * cfg.report_interval_s + 5))),
    }
    specs = [redis_spec(data_root, run_id, redis_port, policy)] if redis_port is not None else []
    return specs + [ProcessSpec(name, python_module_cmd(f"alpha_assets.live.workers.{name}"), env=env,
                                ready_probe=LogKeyword(READY_KEYWORD), health_probe=health[name],
                                restart_policy=policy) for name in WORKERS]


def start_feed(cfg: SoakConfig) -> tuple[Any | None, str, str]:
    """(loopback server or None, ws stream url, REST base)."""
    from alpha_assets.market.ws_client import BINANCE_UM_REST, BINANCE_UM_WS, combined_stream_url

    if cfg.feed in ("binance", "external"):
        base = cfg.feed_ws_url or BINANCE_UM_WS
        url = base if "/stream?" in base or "/ws/" in base else combined_stream_url(base, cfg.symbols)
        rest = cfg.feed_rest_url or (BINANCE_UM_REST if cfg.feed == "binance" and not cfg.feed_ws_url else "")
        return None, url, rest
    from alpha_assets.market.exchange_server import ExchangeServer, replay_sources, simulator_sources

    now = int(time.time() * 1000)
    if cfg.feed == "replay":
        sources = replay_sources(cfg.replay_capture, cfg.symbols, now, cfg.replay_speed)
    else:
        sources = simulator_sources(cfg.symbols, cfg.seed, now)
    from alpha_assets.market.injection import MalformedPlan

    server = ExchangeServer(sources, malformed=MalformedPlan(rate=cfg.malformed_rate, seed=cfg.malformed_seed)).start()
    return server, server.stream_url(cfg.symbols), server.rest_url


ProgressHook = Callable[[dict[str, Any]], None]
PROGRESS_INTERVAL_S = 60.0


def _progress(sup: Supervisor, data_root: Path, exporter: PushgatewayExporter, latency: LatencyCollector,
              started: float, cfg: SoakConfig) -> dict[str, Any]:
    """The figures so far, for a progress line: signals, tick→signal, restarts, exports."""
    now = live_figures(sup, data_root)
    return {
        "elapsed_s": round(time.time() - started, 1), "minutes": cfg.minutes,
        "signals_total": int(now["signals_total"] or 0), "trades_landed": int(now["trades_landed"] or 0),
        "orders": int(now["orders"] or 0), "lag_ms": latency.recent_ms(),
        "restarts_total": int(now["restarts_total"]), "exports": exporter.stats.export_count,
        "export_errors": exporter.stats.error_count, "workers_healthy": sum(now["healthy"].values()),
        "workers": len(now["healthy"]),
        "signal_resumed": read_json(heartbeat_path(data_root, "signal")).get("resumed"),
    }


def run_soak(cfg: SoakConfig, data_root: Path, run_id: str, *, extra_hooks: list[Hook] | None = None,
             on_progress: ProgressHook | None = None, progress_interval_s: float = PROGRESS_INTERVAL_S,
             stop: threading.Event | None = None, send_times: SendTimes | None = None,
             feed_server: Any | None = None) -> SoakResult:
    """``on_progress`` gets the figures so far once the workers are ready and every
    ``progress_interval_s`` after; ``stop``, when set (from any thread), ends the run early (drained,
    in order). ``send_times(symbol, trade_id) -> ns``: the exchange's send times when the feed is
    external but observable (a benchmark's own loopback exchange); the soak's own exchange supplies them.
    ``feed_server``: that loopback exchange itself (feed=external), so the soak treats it as its own: the
    drain stops it first and waits for every trade it sent, and the landed trades are accounted against it."""
    data_root = Path(data_root).resolve()
    server, ws_url, rest_url = start_feed(cfg)
    server = server if server is not None else feed_server
    started = time.time()  # the run starts once its feed serves (a simulator warms its day first)
    if server is not None:
        send_times = lambda sym, tid: server.send_times[sym].get(tid)  # noqa: E731
    redis_port = None if cfg.bus_url else free_port()
    bus_url = cfg.bus_url or f"redis://127.0.0.1:{redis_port}/0"
    cfg_file = data_root / "runtime" / "soak" / f"worker_config_{run_id}.json"
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    for name in WORKERS:  # heartbeats of an earlier run must not look fresh
        heartbeat_path(data_root, name).unlink(missing_ok=True)
    worker_cfg = {"run_id": run_id, "data_root": str(data_root), "symbols": cfg.symbols,
                  "start_ms": int(started * 1000), "ws_url": ws_url, "rest_url": rest_url, "bus_url": bus_url,
                  "sink": cfg.sink, "sink_batch_n": cfg.sink_batch_n, "sink_flush_ms": cfg.sink_flush_ms,
                  "book_join": cfg.book_join, "input_mode": cfg.input_mode, "paper": cfg.paper,
                  "lateness_ms": cfg.lateness_ms, "read_timeout_s": cfg.read_timeout_s,
                  "bus_buffer_max": cfg.bus_buffer_max, "report_interval_s": cfg.report_interval_s,
                  "engine": cfg.engine,
                  # at stop the harvester backfills its open gaps for up to half the drain's budget
                  "ws_client": {"stop_backfill_s": cfg.drain_timeout_s / 2}}
    cfg_file.write_text(json.dumps(worker_cfg, indent=2))
    sup = Supervisor(worker_specs(cfg, data_root, run_id, cfg_file, redis_port), data_root,
                     health_interval_s=cfg.health_interval_s, stop_grace_s=cfg.stop_grace_s)
    if stop is not None:
        sup.stop_event = stop
    latency = LatencyCollector(bus_url, run_id, cfg.symbols, send_times)
    url = resolve_pushgateway_url(cfg.pushgateway_url or _configured_pushgateway())
    exporter = PushgatewayExporter(url, run_id=run_id, collectors=(latency,))
    parity = SinkParity(data_root / "runtime", run_id, cfg.sink)
    ctx = SoakContext(cfg, sup, server, exporter, data_root, run_id, bus_url)
    injector = None
    if cfg.fault_plan:  # the soak's own faults go through the fault package's injectors (one vocabulary)
        from alpha_assets.faults.inject import Injector
        from alpha_assets.faults.plan import FaultPlan

        injector = Injector(FaultPlan(faults=cfg.fault_plan), data_root).prepare()  # before any worker starts
    own = injector.hooks() if injector is not None else []
    hooks = [(at, (lambda s, fn=fn: fn(ctx))) for at, fn in own + list(extra_hooks or [])]
    sup.install_signal_handlers()
    sup.event("RunStart", "", run_id=run_id, feed=cfg.feed, ws_url=ws_url, bus=bus_url, sink=cfg.sink,
              book_join=cfg.book_join, pushgateway=url or "off")
    drained: dict[str, Any] = {"ok": False}
    try:
        # the consumers first, the producer once they are ready: no backlog waits for a starting worker
        wait_s = cfg.ready_timeout_s * (1 + len(cfg.restart_backoff_s))
        sup.start_all(only=[n for n in sup.order if n != "harvest"])
        latency.start()
        exporter.start(lambda: live_figures(sup, data_root, parity), cfg.export_interval_s)
        sup.wait_ready(timeout_s=wait_s)
        sup.start_all(only=["harvest"])
        sup.wait_ready(timeout_s=wait_s)
        remaining = max(0.0, cfg.minutes * 60 - (time.time() - started))
        elapsed = time.time() - started  # hook times count from the start of the run, not from readiness
        next_progress = [time.monotonic()]

        def poll() -> None:
            if on_progress is not None and time.monotonic() >= next_progress[0]:
                next_progress[0] += progress_interval_s
                try:
                    on_progress(_progress(sup, data_root, exporter, latency, started, cfg))
                except Exception as exc:  # a progress reader must never stop the soak
                    sup.alert("", "progress hook failed", error=f"{type(exc).__name__}: {exc}")

        sup.run(remaining, hooks=[(max(0.0, at - elapsed), fn) for at, fn in hooks], on_poll=poll)
    finally:
        try:
            if injector is not None:  # every fault undone before the drain
                injector.close()
            if server is not None and server.injected:
                # no new malformed messages; those already sent reach the harvester before it stops
                server.pause_malformed()
                time.sleep(1.0)
            drained = drain(sup, cfg, bus_url, run_id, server)
        finally:
            latency.stop()
            shutdown_order = list(sup.graceful_shutdown())  # what the drain left: report, then redis
            if injector is not None:
                injector.teardown()  # a disk fault's own file system goes once no worker writes there
            sup.restore_signal_handlers()
            if server is not None:
                server.stop()
            stats = exporter.stop(final=live_figures(sup, data_root, parity, final=True))
    ended = time.time()
    lat = latency.summary()
    drained["order"] = shutdown_order
    drained["ok"] = drained["ok"] and shutdown_order == [n for n in ("harvest", "lander", "signal", "broker",
                                                                     "report", "redis") if n in sup.children]
    figures, checks, extra = soak_figures(cfg, sup, data_root, run_id, stats, started, ended, server, drained,
                                          latency.figures())
    manifest = {
        "started_utc": _iso(started), "ended_utc": _iso(ended), "duration_s": round(ended - started, 3),
        "mode": {"feed": cfg.feed, "input_mode": cfg.input_mode, "sink": cfg.sink, "paper": cfg.paper,
                 "book_join": cfg.book_join, "bus": "local redis-server" if redis_port else bus_url},
        "config": cfg.model_dump(mode="json"),
        "processes": {n: dict(p) for n, p in sup.status().items()},
        "export_count": stats.export_count, "error_count": stats.error_count, "export": stats.as_dict(),
        "pushgateway": url or None, "latency": lat, "drain": drained,
        "alerts": sup.alerts, "harvester_slo": extra["harvester_slo"],
        "max_rss_mb": figures["max_rss_mb"], "max_open_files": figures["max_open_files"],
        "shutdown_order": shutdown_order, "figures": figures, "checks": checks, "passed": all(checks.values()),
        "faults_injected": ctx.injected, "recoveries": recoveries(sup.timeline),
        "timeline": [e for e in sup.timeline if e["event"] != "Health"],
    }
    run_path = write_run_manifest(data_root, run_id, manifest)
    src_path = write_source_manifest(
        data_root, run_id, symbols=cfg.symbols, session_window=(int(started * 1000), int(ended * 1000)),
        endpoint=ws_url, input_mode=cfg.input_mode, watch=str(data_root / "landing" / "raw"),
        feature_dir=str(data_root / "runtime"), config=cfg.model_dump(mode="json"))
    return SoakResult(run_id, figures, checks, run_path, src_path, list(sup.timeline), latency)




def _configured_pushgateway() -> str:
    """``pushgateway.url`` of alpha_assets.yaml ("" when unset or the file is unreadable)."""
    try:
        from alpha_assets.settings import settings

        return settings().pushgateway.url
    except Exception:  # the soak must not fail on the project file; env names still apply
        return ""


def main(argv: list[str] | None = None) -> int:
    """``python -m alpha_assets.live.soak --minutes 30 --sink jsonl [--book-join arrival]``."""
    import argparse

    ap = argparse.ArgumentParser(description="Run the supervised live soak (harvest → lander → signal → broker).")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    ap.add_argument("--sink", default="dual", choices=["jsonl", "sqlite", "dual"])
    ap.add_argument("--feed", default="simulator", choices=["simulator", "binance", "replay", "external"])
    ap.add_argument("--feed-ws-url", default="")
    ap.add_argument("--feed-rest-url", default="")
    ap.add_argument("--book-join", default="arrival", choices=["arrival", "event_time"])
    ap.add_argument("--sink-flush-ms", type=int, default=500)
    ap.add_argument("--sink-batch-n", type=int, default=500)
    ap.add_argument("--bus-url", default="")
    ap.add_argument("--replay-capture", default="")
    ap.add_argument("--export-interval-s", type=float, default=60.0)
    ap.add_argument("--health-interval-s", type=float, default=10.0)
    ap.add_argument("--pushgateway-url", default="")
    ap.add_argument("--run-id", default="")
    ap.add_argument("--data-root", default="")
    args = ap.parse_args(argv)
    from alpha_assets.paths import data_root as default_root

    cfg = SoakConfig(minutes=args.minutes, symbols=args.symbols.split(","), sink=args.sink, feed=args.feed,
                     feed_ws_url=args.feed_ws_url, feed_rest_url=args.feed_rest_url, book_join=args.book_join,
                     sink_flush_ms=args.sink_flush_ms, sink_batch_n=args.sink_batch_n, bus_url=args.bus_url,
                     replay_capture=args.replay_capture, export_interval_s=args.export_interval_s,
                     health_interval_s=args.health_interval_s, pushgateway_url=args.pushgateway_url)
    run_id = args.run_id or time.strftime("soak_%Y%m%d_%H%M%S", time.gmtime()) + "_" + uuid.uuid4().hex[:6]
    res = run_soak(cfg, Path(args.data_root) if args.data_root else default_root(), run_id)
    print(json.dumps({"run_id": run_id, "passed": res.passed, "checks": res.checks, "figures": res.figures(),
                      "run_manifest": str(res.run_manifest)}, indent=2, default=str))
    return 0 if res.passed else 1


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds")


if __name__ == "__main__":
    raise SystemExit(main())

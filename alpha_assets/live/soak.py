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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpha_assets.layout import Layout
from alpha_assets.live.latency import LatencyCollector, SendTimes
from alpha_assets.live.pushgateway import PushgatewayExporter, pushgateway_url
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
from alpha_assets.live.soak_wiring import start_feed, worker_config, worker_specs
from alpha_assets.live.supervisor import Supervisor, recoveries
from alpha_assets.live.workers.common import heartbeat_path, read_json
from alpha_assets.manifests import write_run_manifest, write_source_manifest
from alpha_assets.processes import free_port

if TYPE_CHECKING:
    from alpha_assets.market.exchange_server import ExchangeServer

__all__ = ["FaultSpec", "Hook", "OPEN_FILES_LIMIT", "RECONNECT_LIMIT", "RSS_LIMIT_MB", "SoakConfig", "SoakContext",
           "SoakResult", "WORKERS", "run_soak", "soak_config_from"]


@dataclass
class SoakContext:
    """What a fault hook can reach."""

    cfg: SoakConfig
    supervisor: Supervisor
    server: ExchangeServer | None
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
             feed_server: Any | None = None, start_delay: Callable[[float], float] | None = None) -> SoakResult:
    """``on_progress`` gets the figures so far once the workers are ready and every
    ``progress_interval_s`` after; ``stop``, when set (from any thread), ends the run early (drained,
    in order). ``send_times(symbol, trade_id) -> ns``: the exchange's send times when the feed is
    external but observable (a benchmark's own loopback exchange); the soak's own exchange supplies them.
    ``feed_server``: that loopback exchange itself (feed=external), so the soak treats it as its own: the
    drain stops it first and waits for every trade it sent, and the landed trades are accounted against it.
    ``start_delay(now) -> s``: wait that long once the feed serves, before the run starts (a fault run
    aligns its minute close with its plan this way)."""
    data_root = Path(data_root).resolve()
    server, ws_url, rest_url = start_feed(cfg)
    server = server if server is not None else feed_server
    if start_delay is not None:
        (stop or threading.Event()).wait(start_delay(time.time()))
    started = time.time()  # the run starts once its feed serves (a simulator warms its day first)
    if server is not None:
        send_times = lambda sym, tid: server.send_times[sym].get(tid)  # noqa: E731
    redis_port = None if cfg.bus_url else free_port()
    bus_url = cfg.bus_url or f"redis://127.0.0.1:{redis_port}/0"
    layout = Layout(data_root)
    cfg_file = layout.worker_config(run_id)
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    for name in WORKERS:  # heartbeats of an earlier run must not look fresh
        heartbeat_path(data_root, name).unlink(missing_ok=True)
    cfg_file.write_text(worker_config(cfg, data_root, run_id, started, ws_url, rest_url, bus_url)
                        .model_dump_json(indent=2))
    sup = Supervisor(worker_specs(cfg, data_root, run_id, cfg_file, redis_port), data_root,
                     health_interval_s=cfg.health_interval_s, stop_grace_s=cfg.stop_grace_s)
    if stop is not None:
        sup.stop_event = stop
    latency = LatencyCollector(bus_url, run_id, cfg.symbols, send_times)
    url = pushgateway_url(cfg.pushgateway_url)
    exporter = PushgatewayExporter(url, run_id=run_id, collectors=(latency,))
    parity = SinkParity(layout.runtime_dir, run_id, cfg.sink)
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
        endpoint=ws_url, input_mode=cfg.input_mode, watch=str(layout.landing_zone("raw")),
        feature_dir=str(layout.runtime_dir), config=cfg.model_dump(mode="json"))
    return SoakResult(run_id, figures, checks, run_path, src_path, list(sup.timeline), latency)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds")

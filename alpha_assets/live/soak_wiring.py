"""How a soak wires its processes: what each worker is told, the supervisor's specs and health
probes, the feed it harvests, and the drain at the end (producers first, every consumer up to the
marked ends)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpha_assets.layout import Layout
from alpha_assets.live import bus, bus_admin
from alpha_assets.live.probes import AllOf, FilesRecent, HeartbeatFresh, LogKeyword, Probe
from alpha_assets.live.process import ProcessSpec, child_environment, python_module_cmd
from alpha_assets.live.redis_server import redis_spec
from alpha_assets.live.soak_config import SoakConfig
from alpha_assets.live.soak_figures import WORKERS
from alpha_assets.live.supervisor import Supervisor
from alpha_assets.live.workers.common import READY_KEYWORD, WorkerConfig, heartbeat_path
from alpha_assets.processes import spawn

if TYPE_CHECKING:
    from alpha_assets.market.exchange_server import ExchangeServer


def worker_config(cfg: SoakConfig, data_root: Path, run_id: str, started: float, ws_url: str, rest_url: str,
                  bus_url: str) -> WorkerConfig:
    """What every worker of the run is told (the one channel: the file `worker_specs` names)."""
    return WorkerConfig(run_id=run_id, data_root=data_root, symbols=cfg.symbols, start_ms=int(started * 1000),
                        ws_url=ws_url, rest_url=rest_url, bus_url=bus_url, sink=cfg.sink, sink_batch_n=cfg.sink_batch_n,
                        sink_flush_ms=cfg.sink_flush_ms, book_join=cfg.book_join, input_mode=cfg.input_mode,
                        paper=cfg.paper, lateness_ms=cfg.lateness_ms, read_timeout_s=cfg.read_timeout_s,
                        bus_buffer_max=cfg.bus_buffer_max, report_interval_s=cfg.report_interval_s, engine=cfg.engine)


def worker_specs(cfg: SoakConfig, data_root: Path, run_id: str, cfg_file: Path, redis_port: int | None
                 ) -> list[ProcessSpec]:
    env = {"ALPHA_WORKER_CONFIG": str(cfg_file)}
    for name in ("ALPHA_SHARED_DIR", "ALPHA_CONFIG"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    policy = cfg.restart_policy()
    beat_age = max(15.0, 3 * cfg.health_interval_s)
    layout = Layout(data_root)
    files_window = 60.0 + cfg.lateness_ms / 1000 + 15  # one minute file per minute, after the lateness

    def fresh(name: str, zero: tuple[str, ...] = ()) -> HeartbeatFresh:
        return HeartbeatFresh(heartbeat_path(data_root, name), beat_age, zero)

    health: dict[str, Probe] = {
        "harvest": fresh("harvest", ("queue_dropped",)),
        "lander": AllOf((fresh("lander", ("landing_failing",)), FilesRecent(layout.landing_zone("raw"), "date=*/symbol=*/trades_*.parquet", files_window),
                         FilesRecent(layout.landing_zone("preview"), "date=*/symbol=*/preview_*.parquet", files_window))),
        "signal": fresh("signal", ("queue_dropped", "sink_failing")),
        "broker": fresh("broker"),
        "report": AllOf((fresh("report"),
                         FilesRecent(layout.report_dir, "summary_*.json", 3 * cfg.report_interval_s + 5))),
    }
    specs = [redis_spec(data_root, run_id, redis_port, policy)] if redis_port is not None else []
    return specs + [ProcessSpec(name, python_module_cmd(f"alpha_assets.live.workers.{name}"), env=env,
                                ready_probe=LogKeyword(READY_KEYWORD), health_probe=health[name],
                                restart_policy=policy) for name in WORKERS]


def start_feed(cfg: SoakConfig) -> tuple[ExchangeServer | None, str, str]:
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


def drain(sup: Supervisor, cfg: SoakConfig, bus_url: str, run_id: str, server: ExchangeServer | None
          ) -> dict[str, Any]:
    """End of run, producers first: every consumer takes in everything the feed sent, then exits."""
    keys = bus.Keys(run_id)
    out: dict[str, Any] = {"ok": True, "workers": {}}
    sup.stop_event.set()  # from here nothing is restarted
    if server is not None:
        _quiesce_feed(sup, cfg, bus_url, run_id, server)
    sup.stop_child("harvest")  # it publishes what it holds and backfills its open gaps first
    if server is not None:
        server.stop()
        sup.event("Stop", "exchange", drops=server.stats.drops)
    try:
        r = bus.wait_ready(bus_url, timeout_s=30)
        out["ends"] = bus_admin.mark_end(r, keys, keys.harvested(cfg.symbols))
        for name in ("lander", "signal", "broker"):
            if name == "broker":  # the signal worker has stopped: its streams end here
                out["ends"] |= bus_admin.mark_end(r, keys, [keys.sig(s) for s in cfg.symbols])
            code = _finish(sup, name, cfg.drain_timeout_s)
            out["workers"][name] = code
            out["ok"] = out["ok"] and code == 0
    except (*bus.BUS_ERRORS, TimeoutError) as exc:
        sup.alert("", "drain failed: the bus is unreachable", error=f"{type(exc).__name__}: {exc}")
        out["ok"] = False
    return out


def _quiesce_feed(sup: Supervisor, cfg: SoakConfig, bus_url: str, run_id: str, server: ExchangeServer,
                  timeout_s: float = 15.0) -> None:
    """The exchange, the first producer, stops sending; the harvester gets until every trade sent is
    on the bus (a trade in flight when it stopped would be lost at the end of every run)."""
    server.stall(3600)
    sent = {s: server.sent_trade_ids[s][-1] for s in cfg.symbols if server.sent_trade_ids.get(s)}
    keys, t0 = bus.Keys(run_id), time.monotonic()
    behind = dict(sent)
    r = bus.connect(bus_url, timeout_s=2)
    while behind and time.monotonic() - t0 < timeout_s:
        try:
            behind = {s: i for s, i in behind.items() if (bus_admin.newest_trade_id(r, keys.md(s)) or -1) < i}
        except bus.BUS_ERRORS:
            pass
        if behind:
            time.sleep(0.05)
    sup.event("FeedQuiesced", "exchange", sent_through=sent, waited_s=round(time.monotonic() - t0, 3),
              not_on_bus=behind)


def _finish(sup: Supervisor, name: str, timeout_s: float) -> int | None:
    """The worker drains to the marked ends and exits; one that is down drains in a one-off run."""
    if sup.children[name].alive():
        sup.event("DrainStart", name)
        return sup.await_finish(name, timeout_s)
    spec = sup.children[name].spec
    log = Layout(sup.data_root).log_dir(name) / "drain.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sup.event("DrainStart", name, one_off=True)
    with open(log, "ab") as fh:
        proc = spawn(spec.cmd, env=child_environment(spec.env), stdout=fh, stderr=fh, stdin=subprocess.DEVNULL)
        try:
            code: int | None = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            sup.alert(name, "drain timed out", timeout_s=timeout_s)
            proc.kill()
            proc.wait()
            code = None
    sup.children[name].state = "stopped"
    sup.shutdown_order.append(name)
    sup.event("Stop", name, returncode=code, drained=code == 0, one_off=True)
    return code

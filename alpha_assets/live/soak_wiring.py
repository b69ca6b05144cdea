"""How a soak wires its processes: what each worker is told, the supervisor's specs and health
probes, and the feed it harvests (the drain at the end is live/soak_drain.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from alpha_assets.layout import Layout
from alpha_assets.live.probes import AllOf, FilesRecent, HeartbeatFresh, LogKeyword, Probe
from alpha_assets.live.process import ProcessSpec, python_module_cmd
from alpha_assets.live.redis_server import redis_spec
from alpha_assets.live.soak_config import SoakConfig
from alpha_assets.live.soak_figures import WORKERS
from alpha_assets.live.standby import standby_cmd
from alpha_assets.live.workers.common import READY_KEYWORD, WorkerConfig, heartbeat_path

if TYPE_CHECKING:
    from alpha_assets.market.exchange_server import ExchangeServer


def worker_config(cfg: SoakConfig, data_root: Path, run_id: str, started: float, ws_url: str, rest_url: str,
                  bus_url: str) -> WorkerConfig:
    """What every worker of the run is told (the one channel: the file `worker_specs` names)."""
    return WorkerConfig(run_id=run_id, data_root=data_root, symbols=cfg.symbols, start_ms=int(started * 1000),
                        ws_url=ws_url, rest_url=rest_url, bus_url=bus_url, sink=cfg.sink, sink_batch_n=cfg.sink_batch_n,
                        sink_flush_ms=cfg.sink_flush_ms, book_join=cfg.book_join, input_mode=cfg.input_mode,
                        paper=cfg.paper, lateness_ms=cfg.lateness_ms, read_timeout_s=cfg.read_timeout_s,
                        bus_buffer_max=cfg.bus_buffer_max, report_interval_s=cfg.report_interval_s, engine=cfg.engine,
                        # at stop the harvester backfills its open gaps for up to half the drain's budget
                        ws_client={"stop_backfill_s": cfg.drain_timeout_s / 2})


def worker_specs(cfg: SoakConfig, data_root: Path, run_id: str, cfg_file: Path, redis_port: int | None
                 ) -> list[ProcessSpec]:
    env = {"ALPHA_WORKER_CONFIG": str(cfg_file)}
    for name in ("ALPHA_SHARED_DIR", "ALPHA_CONFIG", "ALPHA_MEMTRACE"):
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
    module = "alpha_assets.live.workers.{}".format
    return specs + [ProcessSpec(name, python_module_cmd(module(name)), env=env, ready_probe=LogKeyword(READY_KEYWORD),
                                health_probe=health[name], restart_policy=policy,
                                standby_cmd=standby_cmd(module(name)) if cfg.warm_standby else None)
                    for name in WORKERS]


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

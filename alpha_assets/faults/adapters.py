"""Every touch point with the live path (alpha_assets.live, the exchange server) in one place.

If the live path's API moves, only this module changes. What it relies on:
* ``run_soak(cfg, data_root, run_id, extra_hooks=[(at_s, fn(SoakContext))])``;
* ``SoakContext.supervisor`` (``event``, ``signal_child``, ``children[name].state/pid/proc``,
  ``stop_event``, ``timeline``), ``SoakContext.server`` (``drop_connections``, ``stall``,
  ``connection_count``, ``produced_trade_ids``, ``sent_trade_ids``, ``feed_log()``) and
  ``SoakContext.exporter`` (``stats.export_count/error_count``);
* heartbeats, watermarks, checkpoints, the SQLite sink and the JSONL spool where
  ``alpha_assets.layout`` puts them;
* the local Pushgateway of ``alpha_assets.live.gateway``.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpha_assets.layout import Layout
from alpha_assets.live.gateway import ManagedGateway
from alpha_assets.live.soak import Hook, ProgressHook, SoakConfig, SoakContext, SoakResult, run_soak
from alpha_assets.live.workers.common import heartbeat_path, read_json, watermark_path

if TYPE_CHECKING:
    from alpha_assets.market.exchange_server import ExchangeServer

__all__ = ["Hook", "ProgressHook", "SoakConfig", "SoakContext", "SoakResult", "run_soak", "heartbeat", "watermark",
           "signal_db", "spool_dir", "kill_worker", "child_state", "feed_log", "ManagedGateway"]


def heartbeat(data_root: Path, name: str) -> dict[str, Any]:
    return read_json(heartbeat_path(data_root, name))


def watermark(data_root: Path, run_id: str, symbol: str) -> int | None:
    wm = read_json(watermark_path(data_root, run_id, symbol)).get("closed_through_ms")
    return int(wm) if wm else None


def signal_db(data_root: Path) -> Path:
    return Layout(Path(data_root)).runtime.sqlite_file()


def spool_dir(data_root: Path) -> Path:
    """Where the JSONL signal sink keeps its open minute parts."""
    return Layout(Path(data_root)).runtime.signal_spool


def kill_worker(ctx: SoakContext, name: str, sig: signal.Signals, label: str) -> int | None:
    """Signal a worker through the supervisor (it logs the Fault event); None when not running."""
    return ctx.supervisor.signal_child(name, sig, label=label)


def child_state(ctx: SoakContext, name: str) -> str:
    child = ctx.supervisor.children.get(name)
    return child.state if child is not None else "unknown"


def feed_log(server: ExchangeServer) -> dict[str, list[tuple[int, int]]]:
    """(agg_trade_id, event_time_ms) of every trade the exchange server produced, per symbol."""
    return server.feed_log()

"""A soak's figures and acceptance checks (v13 TASK-07/07A thresholds), from what the run left:
heartbeats, the supervisor's status and timeline, the sinks, the dead-letter files, the exporter's
counters and the latency collector."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpha_assets.layout import Layout
from alpha_assets.live.metric_names import DEGRADED, HEALTHY, SOAK_ACTIVE
from alpha_assets.live.sink_parity import SinkParity, compare_live_sinks
from alpha_assets.live.soak_config import SoakConfig
from alpha_assets.live.soak_drain import feed_trades_missing
from alpha_assets.live.supervisor import Supervisor
from alpha_assets.live.workers.common import heartbeat_path, read_json
from alpha_assets.sinks.readers import count_sqlite_signals, read_jsonl_signals

if TYPE_CHECKING:
    from alpha_assets.market.exchange_server import ExchangeServer

WORKERS = ("harvest", "lander", "signal", "broker", "report")
# the end-of-run drain stops producers first so every consumer can take everything in
DRAIN_ORDER = ("harvest", "lander", "signal", "broker", "report", "redis")
RSS_LIMIT_MB = 600
OPEN_FILES_LIMIT = 256
RECONNECT_LIMIT = 3


def beats(data_root: Path) -> dict[str, dict[str, Any]]:
    return {n: read_json(heartbeat_path(data_root, n)) for n in WORKERS}


def live_figures(sup: Supervisor, data_root: Path, parity: SinkParity | None = None, *,
                 final: bool = False) -> dict[str, Any]:
    """What the exporter pushes every interval (v13 gauge names). parity_diff_ratio comes from the
    sinks' contents read back (``SinkParity``), absent until it has been measured."""
    b = beats(data_root)
    h, s, br, la = b["harvest"], b["signal"], b["broker"], b["lander"]
    st = sup.status()
    return {
        "signals_total": s.get("signals_total", 0),
        "parity_diff_ratio": parity.ratio(final=final) if parity is not None else None,
        "queue_dropped": queue_dropped(b),
        "reconnect_count": h.get("reconnect_count", 0),
        "deadletter": h.get("deadletter", 0),
        "trades_landed": la.get("trades_landed", 0),
        "orders": br.get("orders", 0),
        "restarts": {n: v["restarts"] for n, v in st.items()},
        "restarts_total": sum(v["restarts"] for v in st.values()),
        "rss_mb": {n: v["max_rss_mb"] for n, v in st.items()},
        "open_files": {n: v["max_open_files"] for n, v in st.items()},
        # green = running and its last probe passed; no verdict yet (starting) = no sample
        HEALTHY.name: {n: int(bool(v["healthy"]) and v["state"] == "ready")
                       for n, v in st.items() if v["healthy"] is not None},
        DEGRADED.name: {n: int(v["state"] == "degraded") for n, v in st.items()},
        SOAK_ACTIVE.name: int(not sup.stop_event.is_set()),  # 0 from the drain on: stopped workers page no one
    }


def queue_dropped(b: dict[str, dict[str, Any]]) -> int:
    """Market events a full queue dropped, harvester and signal worker together."""
    return int(b["harvest"].get("queue_dropped", 0) or 0) + int(b["signal"].get("queue_dropped", 0) or 0)


def soak_figures(cfg: SoakConfig, sup: Supervisor, data_root: Path, run_id: str, stats: Any, started: float,
                 ended: float, server: ExchangeServer | None, drain: dict[str, Any], latency: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, bool], dict[str, Any]]:
    b = beats(data_root)
    h, s, br, la = b["harvest"], b["signal"], b["broker"], b["lander"]
    st = sup.status()
    layout = Layout(data_root)
    runtime = layout.runtime_dir
    run_files = [p for p in sorted(layout.runtime.signal_ready.glob("*/signals_*.jsonl"))
                 if p.stat().st_mtime >= started - 1]
    per_symbol = {sym: sum(1 for p in run_files if p.parent.name == sym) for sym in cfg.symbols}
    jsonl_rows = sqlite_rows = None
    parity = None
    if cfg.sink == "dual":  # both sinks read back after the drain and compared key by key, field by field
        parity = compare_live_sinks(runtime, run_id, published_only=False)
        jsonl_rows, sqlite_rows = parity.total_a, parity.total_b
    elif cfg.sink == "jsonl":
        jsonl_rows = read_jsonl_signals(runtime, run_id=run_id).height
    elif layout.runtime.sqlite_file().exists():
        sqlite_rows = count_sqlite_signals(layout.runtime.sqlite_file(), run_id)
    dead_files = [p for p in layout.landing_zone("deadletter").glob("date=*/symbol=*/*.parquet")
                  if p.stat().st_mtime >= started - 1]
    injected, match = _deadletters_vs_injected(dead_files, server)
    feed = feed_trades_missing(data_root, cfg.symbols, server) if server is not None else {}
    duration = ended - started
    # one push at start, then one per interval while the exporter ran (the final push is extra)
    export_expected = 1 + math.floor(stats.active_s / cfg.export_interval_s) if stats.export_count or stats.error_count else 0
    figures: dict[str, Any] = {
        "run_id": run_id, "duration_s": round(duration, 3), "minutes": cfg.minutes, "book_join": cfg.book_join,
        "export_count": stats.export_count, "error_count": stats.error_count, "export_expected": export_expected,
        "signals_total": int(s.get("signals_total", 0) or 0), "jsonl_rows": jsonl_rows, "sqlite_rows": sqlite_rows,
        "jsonl_ready_files": len(run_files), "jsonl_ready_files_min_per_symbol": min(per_symbol.values()),
        "parity_diff_rows": (parity.only_in_a + parity.only_in_b + parity.mismatched_rows) if parity else None,
        "parity_max_rel_diff": parity.max_rel_diff if parity else None,
        "parity_only_in_jsonl": parity.only_in_a if parity else None,
        "parity_only_in_sqlite": parity.only_in_b if parity else None,
        "parity_mismatched_rows": parity.mismatched_rows if parity else None,
        "queue_dropped": queue_dropped(b),
        "reconnect_count": int(h.get("reconnect_count", 0) or 0),
        "deadletter": int(h.get("deadletter", 0) or 0), "deadletter_files": len(dead_files),
        "malformed_injected": len(injected), "deadletter_unexplained": len(match.unexpected),
        "malformed_not_dead_lettered": len(match.missing) + len(match.wrong_reason) + len(match.landed_as_dead),
        "trade_gaps": int(h.get("trade_gaps", 0) or 0), "gap_trades_unfilled": int(h.get("gap_trades_unfilled", 0) or 0),
        "bus_overflow": sum(int(h.get(k, 0) or 0) for k in ("overflow_trades", "overflow_books", "overflow_deadletters")),
        "late_rows": int(la.get("late_rows", 0) or 0),
        # rows the landing zone refused (dead-lettered), writes retried, rows spilled at the end
        **{k: int(la.get(k, 0) or 0) for k in ("unlandable_rows", "land_failures", "spilled_rows")},
        "unrouted_deadletters": int(h.get("unrouted_deadletters", 0) or 0),
        "trades_landed": int(la.get("trades_landed", 0) or 0), "minutes_landed": int(la.get("minutes_landed", 0) or 0),
        "orders": int(br.get("orders", 0) or 0), "fills": int(br.get("filled", 0) or 0),
        "restarts_total": sum(v["restarts"] for v in st.values()),
        "degraded": sum(1 for e in sup.timeline if e["event"] == "Degraded"),
        "max_rss_mb": max((v["max_rss_mb"] for v in st.values()), default=0.0),
        "max_open_files": max((v["max_open_files"] for v in st.values()), default=0),
        "alerts": len(sup.alerts),
        "shutdown_drained": bool(drain.get("ok")),
        "feed_drops": server.stats.drops if server is not None else 0,
        # against the exchange's own record: produced ids through the last one sent, landed once
        "feed_trades_missing": sum(v["missing"] for v in feed.values()) if feed else None,
        "feed_trades_doubled": sum(v["doubled"] for v in feed.values()) if feed else None,
        "drain_not_on_bus": drain.get("not_on_bus") or {},
        **{k: v for k, v in latency.items() if k.startswith("tick_to_")},
    }
    expected_minutes = max(0, int(duration // 60) - 1)
    checks = {
        "export_count": stats.export_count >= max(1, export_expected),
        "error_count_zero": stats.error_count == 0 or any(f.kind == "pushgateway_outage" for f in cfg.fault_plan),
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
        # read back key by key: every row in both sinks with the same fields, and the sinks hold what was signalled
        "sinks_equal_key_by_key": cfg.sink != "dual" or (
            parity is not None and parity.max_rel_diff == 0.0 and parity.total_a == parity.total_b
            == figures["signals_total"] > 0),
        "no_degraded": figures["degraded"] == 0,
        "shutdown_drained": figures["shutdown_drained"],
        # a feed the soak can see (its own exchange, a benchmark's): every trade it sent landed, once
        "trades_landed_as_sent": server is None or (figures["feed_trades_missing"] == 0
                                                    and figures["feed_trades_doubled"] == 0),
        # a latency that could not be measured is a failed check, not a pass
        "latency_measured": bool(latency.get("tick_to_signal_n")) and bool(latency.get("tick_to_durable_n")),
    }
    extra = {"harvester_slo": {k: h.get(k) for k in ("messages", "trades", "books", "reconnect_count", "queue_dropped",
                                                     "deadletter", "trade_gaps", "gap_trades_filled",
                                                     "gap_trades_unfilled", "book_gaps", "watchdog_timeouts",
                                                     "overflow_trades", "overflow_books", "bus_bus_errors",
                                                     "latency_p99_ms")}
             | {k: la.get(k) for k in ("minutes_landed", "late_rows")}}
    return figures, checks, extra


def _deadletters_vs_injected(dead_files: list[Path], server: ExchangeServer | None) -> tuple[list, Any]:
    """The simulator's record of malformed messages and its match against the landed dead letters."""
    import polars as pl

    from alpha_assets.market.injection import match_deadletters

    injected = list(server.injected) if server is not None else []
    rows: list[dict[str, Any]] = []
    for f in dead_files:
        try:
            rows += pl.read_parquet(f).to_dicts()
        except Exception:  # an unreadable file is a mismatch, reported as such
            rows.append({"reason": "unreadable_file", "payload": str(f)})
    return injected, match_deadletters(injected, rows)

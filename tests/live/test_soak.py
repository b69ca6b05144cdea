"""A ~2-minute soak on real servers (loopback exchange, redis-server, Pushgateway, SQLite) with a feed
drop and a SIGKILL of every process mid-stream: harvest, lander, signal, broker and redis-server
itself. Afterwards, key by key against what the exchange produced: every trade landed once, one
signal per landed trade in each sink, one order per routable signal in the outbox; and the live
sinks equal a batch run over the landed partition (in the soak's book-join mode)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from alpha_assets.engine import EngineConfig, compute_features, compute_signals
from alpha_assets.live.soak import FaultSpec, SoakConfig, run_soak
from alpha_assets.manifests import read_run_manifest, read_source_manifest
from alpha_assets.market.landing import landing_partitions, load_landing
from alpha_assets.sinks.readers import read_jsonl_signals, read_sqlite_signals


def test_soak_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="minutes"):
        SoakConfig(minutes=0)
    with pytest.raises(ValueError, match="sink"):
        SoakConfig(sink="csv")
    with pytest.raises(ValueError, match="symbols"):
        SoakConfig(symbols=["BTC/USDT"])
    with pytest.raises(ValueError, match="kind"):
        SoakConfig(fault_plan=[{"at_s": 1, "kind": "explode"}])
    with pytest.raises(ValueError, match="sorted by at_s"):
        SoakConfig(fault_plan=[{"at_s": 5, "kind": "kill_signal"}, {"at_s": 1, "kind": "kill_lander"}])
    with pytest.raises(ValueError, match="sink_flush_ms"):
        SoakConfig(sink_flush_ms=20)
    with pytest.raises(ValueError, match="feed_ws_url"):
        SoakConfig(feed="external")
    with pytest.raises(ValueError, match="feed=external"):
        SoakConfig(feed_ws_url="ws://127.0.0.1:9/stream")
    with pytest.raises(ValueError, match="bus_url"):
        SoakConfig(bus_url="http://127.0.0.1:6379")


def outbox_events(runtime: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in sorted((runtime / "exec_events").glob("*/exec_*.jsonl"))
            for line in p.read_text().splitlines() if line]


@pytest.mark.slow
def test_two_minute_soak_survives_a_kill_of_every_process_without_loss(tmp_path: Path, pushgateway) -> None:
    root = tmp_path / "var"
    run_id = "soak_test_2m"
    seen: dict[str, Any] = {}
    kills = {"signal": 35, "harvest": 45, "lander": 55, "broker": 65, "redis": 75}
    cfg = SoakConfig(
        minutes=2.0, export_interval_s=1, health_interval_s=2, pushgateway_url=pushgateway.url,
        restart_backoff_s=(1.0, 3.0), report_interval_s=5, stop_grace_s=5, lateness_ms=1_000, book_join="arrival",
        sink_flush_ms=50, fault_plan=[FaultSpec(at_s=25, kind="feed_drop")]
        + [FaultSpec(at_s=at, kind=f"kill_{name}") for name, at in kills.items()],
    )
    res = run_soak(cfg, root, run_id, extra_hooks=[(0.0, lambda ctx: seen.setdefault("server", ctx.server))])
    f = res.figures()
    m = read_run_manifest(root, run_id)
    assert res.checks["shutdown_drained"] and m["shutdown_order"] == ["harvest", "lander", "signal", "broker",
                                                                       "report", "redis"], m["drain"]
    assert list(m["processes"]) == ["redis", "harvest", "lander", "signal", "broker", "report"]
    # each killed process was detected, restarted and healthy again
    recs = {r["process"]: r for r in m["recoveries"]}
    assert set(recs) == set(kills) and all(r["recovery_ms"] is not None for r in recs.values()), recs
    assert all(m["processes"][n]["restarts"] == 1 for n in kills)
    # harvester SLO: one feed drop + one restart of its own (a restart reconnects too), nothing dropped
    assert f["queue_dropped"] == 0 and f["reconnect_count"] == 2 and f["bus_overflow"] == 0
    assert f["deadletter"] == 0 and f["deadletter_files"] == 0 and f["gap_trades_unfilled"] == 0
    assert f["trade_gaps"] >= 2 and f["max_rss_mb"] < 600 and f["max_open_files"] < 256

    # ---- key by key against the exchange
    server = seen["server"]
    runtime = root / "runtime"
    sqlite = read_sqlite_signals(runtime / "signals.db", run_id=run_id)
    jsonl = read_jsonl_signals(runtime, run_id=run_id)
    outbox = outbox_events(runtime)
    routable_total = 0
    for sym in cfg.symbols:
        [date] = {d for d, s in landing_partitions(root) if s == sym}
        landed = load_landing(root, date, sym)
        ids = landed["trades"]["agg_trade_id"]
        produced = [i for i in server.produced_trade_ids[sym] if int(ids.min()) <= i <= int(ids.max())]
        assert ids.n_unique() == ids.len() == len(produced), sym  # nothing lost, nothing doubled
        assert set(ids.to_list()) == set(produced), sym
        for name, sink in (("sqlite", sqlite), ("jsonl", jsonl)):
            seqs = sink.filter(pl.col("symbol") == sym)["seq"]
            assert seqs.n_unique() == seqs.len() and set(seqs.to_list()) == set(ids.to_list()), (name, sym)
        routable = sqlite.filter((pl.col("symbol") == sym) & (pl.col("signal_type") != "neutral"))
        orders = [e["signal_row_id"] for e in outbox if e["symbol"] == sym]
        assert len(orders) == len(set(orders)) == routable.height, sym
        assert set(orders) == {f"{run_id}:{sym}:{s}" for s in routable["seq"].to_list()}, sym
        routable_total += routable.height
        # live/batch parity: the landed partition (backfills, replays and all) through the engine, same mode
        arrival = EngineConfig(book_join="arrival")
        batch = compute_signals(compute_features(landed["trades"], landed["book"], arrival), run_id=run_id)
        key = ["symbol", "seq"]
        assert sqlite.filter(pl.col("symbol") == sym).select(batch.columns).sort(key).equals(batch.sort(key)), sym
    assert routable_total > 0
    assert sqlite.height == jsonl.height == f["sqlite_rows"] == f["signals_total"]

    # ---- latency, per event, and its export
    assert f["tick_to_signal_n"] == f["tick_to_durable_n"] == sqlite.height
    assert 0 < f["tick_to_signal_p50_ms"] <= f["tick_to_signal_p99_ms"] <= f["tick_to_signal_max_ms"]
    assert m["latency"]["tick_source"] == "exchange send time"
    counts = sum(pushgateway.value("alpha_tick_to_signal_seconds_count", run_id=run_id, symbol=s) or 0
                 for s in cfg.symbols)
    assert counts == f["tick_to_signal_n"]
    assert pushgateway.value("alpha_consumer_lag_seconds", run_id=run_id, group="signal") is not None
    assert pushgateway.value("alpha_soak_active", run_id=run_id) == 0
    assert pushgateway.value("export_count", job="alpha_soak", run_id=run_id) == f["export_count"] >= 60
    assert f["error_count"] == 0 and pushgateway.value("signals_total", run_id=run_id) == f["signals_total"] > 0
    # report, manifests, logs
    assert res.checks["jsonl_rotates_every_minute"] and f["jsonl_ready_files_min_per_symbol"] >= 1
    assert list((root / "logs" / "report").glob("summary_*.md"))
    src = read_source_manifest(root, run_id)
    assert src["symbols"] == cfg.symbols and src["endpoint"].startswith("ws://127.0.0.1")
    log = (root / "logs" / "orchestrator" / "orchestrator.log").read_text()
    for word in ('"Start"', '"Ready"', '"Health"', '"Stop"', '"Restart"', '"DrainStart"'):
        assert word in log

"""A ~2-minute soak against the real Pushgateway, with a signal-worker kill and a feed drop."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.live.soak import FaultSpec, SoakConfig, run_soak
from alpha_assets.manifests import read_run_manifest, read_source_manifest
from alpha_assets.sinks.readers import read_jsonl_signals, read_sqlite_signals


def test_soak_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="minutes"):
        SoakConfig(minutes=0)
    with pytest.raises(ValueError, match="sink"):
        SoakConfig(sink="csv")
    with pytest.raises(ValueError, match="symbols"):
        SoakConfig(symbols=["BTC/USDT"])
    with pytest.raises(ValueError, match="action"):
        SoakConfig(fault_plan=[{"at_s": 1, "action": "explode"}])


@pytest.mark.slow
def test_two_minute_soak(tmp_path: Path, pushgateway) -> None:
    root = tmp_path / "var"
    run_id = "soak_test_2m"
    cfg = SoakConfig(
        minutes=2.0, export_interval_s=1, health_interval_s=2, pushgateway_url=pushgateway.url,
        restart_backoff_s=(1.0, 3.0), report_interval_s=5, stop_grace_s=5,
        fault_plan=[FaultSpec(at_s=40, action="drop_feed"), FaultSpec(at_s=70, action="kill", target="signal"),
                    FaultSpec(at_s=85, action="kill", target="harvest")],
    )
    res = run_soak(cfg, root, run_id)
    f = res.figures()
    # exports, read back from the gateway itself
    assert f["export_count"] >= 60 and f["error_count"] == 0
    assert pushgateway.value("export_count", job="alpha_soak", run_id=run_id) == f["export_count"]
    assert pushgateway.value("error_count", run_id=run_id) == 0
    assert pushgateway.value("signals_total", run_id=run_id) == f["signals_total"] > 0
    # harvester SLO
    # one feed drop + one harvester restart (a restart reconnects too)
    assert f["queue_dropped"] == 0 and f["reconnect_count"] == 2
    assert f["deadletter"] == 0 and f["deadletter_files"] == 0 and f["gap_trades_unfilled"] == 0
    assert f["max_rss_mb"] < 600 and f["max_open_files"] < 256
    assert f["shutdown_reversed"], f
    assert res.checks["jsonl_rotates_every_minute"], f
    assert f["jsonl_ready_files_min_per_symbol"] >= 1 and f["jsonl_ready_files"] >= 2
    # the killed signal worker came back and resumed from its checkpoint: nothing lost, nothing doubled
    m = read_run_manifest(root, run_id)
    assert m["processes"]["signal"]["restarts"] == 1 and m["processes"]["harvest"]["restarts"] == 1
    assert m["shutdown_order"] == ["report", "broker", "signal", "harvest"]
    recs = {r["process"]: r for r in m["recoveries"]}
    assert set(recs) == {"signal", "harvest"} and all(r["recovery_ms"] is not None for r in recs.values())
    kinds = [(e["event"], e["process"]) for e in m["timeline"]]
    i = kinds.index(("Fault", "signal"))
    assert ("Exit", "signal") in kinds[i:] and ("Restart", "signal") in kinds[i:] and ("Ready", "signal") in kinds[i:]
    runtime = root / "runtime"
    jl = read_jsonl_signals(runtime, run_id=run_id)
    sq = read_sqlite_signals(runtime / "signals.db", run_id=run_id)
    assert sq.height > 0 and sq.height == f["sqlite_rows"] == f["signals_total"]
    assert sq.select("symbol", "seq").is_unique().all() and jl.select("symbol", "seq").is_unique().all()
    assert set(jl.select("symbol", "seq").iter_rows()) <= set(sq.select("symbol", "seq").iter_rows())
    landed = pl.concat([pl.read_parquet(p) for p in (root / "landing" / "raw").glob("date=*/symbol=*/trades_*.parquet")])
    for sym in cfg.symbols:
        beat = json.loads((runtime / "health" / "signal.json").read_text())
        upto = beat["next_minute_ms"][sym]
        ids = set(landed.filter((pl.col("symbol") == sym) & (pl.col("event_time_ms") < upto))["agg_trade_id"])
        seqs = set(sq.filter(pl.col("symbol") == sym)["seq"])
        pending = beat["pending_trades"][sym]
        assert seqs <= ids and len(ids) - len(seqs) == pending, sym
    # trade ids landed are continuous per symbol (the feed drop and the harvester's downtime were backfilled)
    assert f["trade_gaps"] >= 2
    for sym in cfg.symbols:
        ids = landed.filter(pl.col("symbol") == sym)["agg_trade_id"].sort()
        assert ids.n_unique() == ids.len() and ids[-1] - ids[0] + 1 == ids.len()
    # orders, report, manifests, logs
    assert f["orders"] > 0
    assert list((root / "logs" / "report").glob("summary_*.md"))
    src = read_source_manifest(root, run_id)
    assert src["symbols"] == cfg.symbols and src["endpoint"].startswith("ws://127.0.0.1")
    log = (root / "logs" / "orchestrator" / "orchestrator.log").read_text()
    for word in ('"Start"', '"Ready"', '"Health"', '"Stop"', '"Restart"'):
        assert word in log

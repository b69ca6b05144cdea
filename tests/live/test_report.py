"""The live summary counts the same from SQLite (aggregated by SQL) as from the JSONL files."""

from __future__ import annotations

from pathlib import Path

from alpha_assets.live.workers.common import WorkerConfig
from alpha_assets.live.workers.report import live_summary
from alpha_assets.sinks import SinkConfig, make_sink
from alpha_assets.sinks.synthetic import synthetic_signals


def test_summary_from_sqlite_aggregates_equals_the_one_from_the_rows(tmp_path: Path) -> None:
    sig = synthetic_signals(3_000, run_id="rep", symbols=("BTCUSDT", "ETHUSDT"), seed=11)
    sink = make_sink(SinkConfig(kind="dual"), tmp_path / "runtime")
    sink.write(sig)
    sink.close()
    base = {"run_id": "rep", "data_root": tmp_path, "symbols": ["BTCUSDT", "ETHUSDT"]}
    by_sql = live_summary(WorkerConfig(**base, sink="sqlite"))
    by_rows = live_summary(WorkerConfig(**base, sink="jsonl"))
    for key in ("total", "buy_ratio", "strong_ratio", "confirm", "by_type", "per_minute", "last_5min", "last_minute_ms"):
        assert by_sql[key] == by_rows[key], key
    assert by_sql["total"] == 3_000 and sum(m["n"] for m in by_sql["per_minute"]) == 3_000
    assert by_sql["by_type"] == dict(sig.group_by("signal_type").len().sort("signal_type").iter_rows())

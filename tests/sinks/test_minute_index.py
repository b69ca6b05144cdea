"""The JSONL signal sink's idempotence index is scoped per event-time minute and read lazily: start-up
reads no ready file, a re-run of a partition (a new run id over the same minutes) skips the other run's
files without parsing them, and a replay after a restart still doubles nothing."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from alpha_assets.sinks import KEY, SinkConfig, make_sink, read_jsonl_signals, read_sqlite_signals
from alpha_assets.sinks.jsonl import JsonlSignalSink
from alpha_assets.sinks.synthetic import synthetic_signals


def test_start_up_reads_no_ready_file_and_a_new_run_writes_over_the_same_minutes(tmp_path: Path) -> None:
    first = synthetic_signals(20_000, seed=41, run_id="run-a", symbols=("BTCUSDT",))
    cfg = SinkConfig(kind="dual", fsync="never", flush_ms=0)
    sink = make_sink(cfg, tmp_path)
    sink.write(first)
    sink.close()
    again = JsonlSignalSink(tmp_path, cfg)
    spool = again._spool("BTCUSDT")
    assert spool.counters.index_keys == 0  # nothing parsed at start
    second = first.with_columns(pl.lit("run-b").alias("run_id"))
    again.write(second)  # same minutes, another run: its keys are proven absent without parsing
    last_minute = second.filter(pl.col("ts_ms") // 60_000 == second["ts_ms"].max() // 60_000).height
    assert spool.counters.index_keys == last_minute  # only the open minute is held; published ones are forgotten
    assert spool.counters.duplicates_skipped == 0
    again.close()
    both = read_jsonl_signals(tmp_path)
    assert both.height == 40_000 and both.select(KEY).is_duplicated().sum() == 0


def test_replay_after_restart_is_deduplicated_minute_by_minute(tmp_path: Path) -> None:
    df = synthetic_signals(30_000, seed=43, run_id="run-c")
    cfg = SinkConfig(kind="dual", fsync="never", flush_ms=0)
    sink = make_sink(cfg, tmp_path)
    sink.write(df.head(20_000))
    sink.close()
    sink = make_sink(cfg, tmp_path)
    for part in df.slice(10_000).iter_slices(777):  # overlapping replay, small and big writes
        sink.write(part)
    sink.close()
    c = sink.counters()
    assert c["jsonl"]["spool_duplicates_skipped"] == 10_000 == c["sqlite"]["duplicates_skipped"]
    j, s = read_jsonl_signals(tmp_path), read_sqlite_signals(tmp_path / "signals.db")
    assert j.height == 30_000 and j.equals(df.sort(KEY)) and s.equals(j)


def test_a_symbol_being_written_elsewhere_is_not_recovered_as_orphaned(tmp_path: Path) -> None:
    """Two partitions of different symbols in parallel (a backfill over 2 processes): the second sink
    must leave the first one's open parts alone instead of failing on its lock."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from alpha_assets.sinks import SinkConfig, make_sink
        from alpha_assets.sinks.synthetic import synthetic_signals
        cfg = SinkConfig(kind="jsonl", fsync="never", batch_n=1_000_000, flush_ms=5000)
        sink = make_sink(cfg, Path({str(tmp_path)!r}))
        sink.write(synthetic_signals(500, seed=1, symbols=("ETHUSDT",)))
        sink.flush()
        print("writing", flush=True)
        sys.stdin.readline()
        sink.close()
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "writing"
        assert list((tmp_path / "spool" / "signal" / "ETHUSDT").glob("*.part"))
        sink = make_sink(SinkConfig(kind="dual", fsync="never"), tmp_path)  # ETHUSDT is held: not an orphan
        assert "ETHUSDT" not in sink.jsonl.recovered  # type: ignore[attr-defined]
        sink.write(synthetic_signals(300, seed=2, symbols=("BTCUSDT",)))
        sink.close()
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    assert read_jsonl_signals(tmp_path, symbol="ETHUSDT").height == 500
    assert read_jsonl_signals(tmp_path, symbol="BTCUSDT").height == 300

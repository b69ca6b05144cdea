"""Both sinks round-trip the Signals columns exactly; replays double nothing; parity sees sabotage."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from alpha_assets.sinks import (
    KEY,
    SIGNAL_SCHEMA,
    SinkConfig,
    compare_sinks,
    make_sink,
    read_jsonl_signals,
    read_sqlite_signals,
)
from alpha_assets.sinks.synthetic import synthetic_signals

N = 100_000


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return synthetic_signals(N, seed=11)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, frame: pl.DataFrame) -> Path:
    rt = tmp_path_factory.mktemp("rt")
    sink = make_sink(SinkConfig(kind="dual", fsync="never"), rt)
    for chunk in frame.iter_slices(7_919):  # uneven chunks: minutes straddle writes
        sink.write(chunk)
    sink.close()
    return rt


def test_round_trip_is_exact_with_many_rows_per_millisecond(written: Path, frame: pl.DataFrame) -> None:
    assert frame.group_by("ts_ms").len().get_column("len").max() >= 50  # the v13 key would collapse these
    j = read_jsonl_signals(written, run_id="run-1")
    s = read_sqlite_signals(written / "signals.db", run_id="run-1")
    assert j.schema == s.schema == pl.Schema(SIGNAL_SCHEMA)
    expected = frame.sort(KEY)
    assert j.height == s.height == N
    assert j.equals(expected) and s.equals(expected)  # null-aware, bit-exact floats
    res = compare_sinks(j, s)
    assert res.max_rel_diff == 0.0 and res.passed(0.0)
    assert res.matched == N and res.mismatched_rows == 0 and res.only_in_a == res.only_in_b == 0
    assert res.total_a == N and sum(res.by_type_a.values()) == N
    orjson.loads(res.model_dump_json())  # JSON-serialisable


def test_ready_layout_and_filters(written: Path, frame: pl.DataFrame) -> None:
    files = sorted((written / "ready" / "signal" / "BTCUSDT").glob("*.jsonl"))
    assert files and files[0].name.startswith("signals_20240107_")
    assert not list((written / "spool").rglob("*.part"))
    btc = read_jsonl_signals(written, symbol="BTCUSDT")
    assert btc.height == frame.filter(pl.col("symbol") == "BTCUSDT").height
    assert read_sqlite_signals(written / "signals.db", symbol="BTCUSDT").equals(btc)
    assert read_jsonl_signals(written, date="2024-01-07").height == N
    assert read_jsonl_signals(written, date="2024-01-08").height == 0
    assert read_sqlite_signals(written / "signals.db", date="2024-01-08").height == 0
    assert read_sqlite_signals(written / "signals.db", run_id="other").height == 0


def test_replay_doubles_nothing_across_restart(tmp_path: Path) -> None:
    df = synthetic_signals(20_000, seed=3)
    cfg = SinkConfig(kind="dual", fsync="never", flush_ms=0)
    sink = make_sink(cfg, tmp_path)
    sink.write(df.head(12_000))
    sink.write(df.slice(5_000, 3_000))  # overlapping replay in the same process
    sink.close()
    sink2 = make_sink(cfg, tmp_path)  # restart; the producer replays from an older checkpoint
    sink2.write(df.slice(10_000, 10_000))
    sink2.write(df)
    sink2.close()
    c = sink2.counters()
    assert c["sqlite"]["duplicates_skipped"] == 2_000 + 20_000 and c["sqlite"]["rows_written"] == 8_000
    assert c["jsonl"]["spool_duplicates_skipped"] == 2_000 + 20_000
    j, s = read_jsonl_signals(tmp_path), read_sqlite_signals(tmp_path / "signals.db")
    assert j.height == s.height == 20_000 and j.equals(df.sort(KEY)) and s.equals(j)


def test_nan_null_and_bad_keys(tmp_path: Path) -> None:
    df = synthetic_signals(50, seed=5).with_columns(
        pl.when(pl.col("seq") % 2 == 0).then(float("nan")).otherwise(pl.col("score")).alias("score"))
    bad = df.head(3).with_columns(pl.lit(None, pl.Int64).alias("seq"))
    evil = df.head(1).with_columns(pl.lit("../../etc").alias("symbol"))  # would escape the ready dir
    sink = make_sink(SinkConfig(kind="dual", flush_ms=0), tmp_path)
    sink.write(pl.concat([df, bad]))
    sink.jsonl.write(evil)  # type: ignore[attr-defined]
    sink.close()
    c = sink.counters()
    assert c["jsonl"]["rejected"] == 4 and c["sqlite"]["rejected"] == 3
    assert not (tmp_path / "etc").exists() and not list(tmp_path.rglob("*etc*"))
    dl = (tmp_path / "deadletter" / "signals_sqlite.jsonl").read_bytes().splitlines()
    assert len(dl) == 3 and orjson.loads(dl[0])["reason"] == "null key"
    j, s = read_jsonl_signals(tmp_path), read_sqlite_signals(tmp_path / "signals.db")
    assert compare_sinks(j, s).max_rel_diff == 0.0
    assert j.filter(pl.col("seq") % 2 == 0).get_column("score").null_count() == j.filter(pl.col("seq") % 2 == 0).height


def test_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    sink = make_sink(SinkConfig(kind="jsonl"), tmp_path)
    with pytest.raises(ValueError, match="lacks columns.*created_at"):
        sink.write(synthetic_signals(5).drop("created_at"))
    sink.close()


def test_batching_by_event_time_and_injected_clock(tmp_path: Path) -> None:
    df = synthetic_signals(3_000, seed=9, symbols=("BTCUSDT",))
    sink = make_sink(SinkConfig(kind="sqlite", batch_n=10_000, flush_ms=1_000), tmp_path / "a")
    first = df.filter(pl.col("ts_ms") < df["ts_ms"][0] + 500)
    sink.write(first)
    assert sink.counters()["pending"] == first.height  # < batch_n and < 1 s of event time
    sink.write(df.filter(pl.col("ts_ms") >= df["ts_ms"][0] + 500).filter(pl.col("ts_ms") < df["ts_ms"][0] + 1_200))
    assert sink.counters()["pending"] == 0 and sink.counters()["batches"] == 1  # 1 s of event time passed
    sink.close()
    now = [0]
    clocked = make_sink(SinkConfig(kind="sqlite", batch_n=10_000, flush_ms=200), tmp_path / "b",
                        clock=lambda: now[0])
    clocked.write(df.head(10))
    now[0] = 199
    clocked.write(df.slice(10, 10))
    assert clocked.counters()["pending"] == 20
    now[0] = 200
    clocked.write(df.slice(20, 10))
    assert clocked.counters()["pending"] == 0
    small = make_sink(SinkConfig(kind="sqlite", batch_n=25, flush_ms=5_000), tmp_path / "c")
    small.write(df.head(24))
    assert small.counters()["pending"] == 24
    small.write(df.slice(24, 1))
    assert small.counters()["pending"] == 0
    clocked.close()
    small.close()
    # an event-time heartbeat flushes rows that are due even when no new rows arrive
    idle = make_sink(SinkConfig(kind="dual", batch_n=10_000, flush_ms=1_000), tmp_path / "d")
    idle.write(df.head(5))
    assert idle.counters()["sqlite"]["pending"] == 5
    idle.advance_to(int(df["ts_ms"][0]) + 999)
    assert idle.counters()["sqlite"]["pending"] == 5
    idle.advance_to(int(df["ts_ms"][0]) + 60_000 * 2)
    assert idle.counters()["sqlite"]["pending"] == 0
    assert list((tmp_path / "d" / "ready" / "signal" / "BTCUSDT").glob("*.jsonl"))  # idle minute published
    idle.close()


def test_v13_keyed_database_is_refused(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "signals.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE signals (run_id TEXT, ts_ms INTEGER, symbol TEXT, score REAL, "
                 "PRIMARY KEY (run_id, ts_ms, symbol))")
    conn.close()
    with pytest.raises(RuntimeError, match=r"PRIMARY KEY \('run_id', 'ts_ms', 'symbol'\)"):
        make_sink(SinkConfig(kind="sqlite"), tmp_path)


def test_live_parity_needs_the_same_window(tmp_path: Path) -> None:
    """v13's drift: the JSONL side lacked the minute still in the spool. Same window → exact."""
    from alpha_assets.sinks.parity import compare_runtime

    df = synthetic_signals(30_000, seed=17, run_id="live")
    sink = make_sink(SinkConfig(kind="dual", flush_ms=0, fsync="never"), tmp_path)
    sink.write(df)
    sink.flush()  # SQLite has every row; the newest minute of each symbol is still a .part
    open_minute_start = int(df["ts_ms"].max()) // 60_000 * 60_000
    drift = compare_runtime(tmp_path, "live")
    assert drift.only_in_b == df.filter(pl.col("ts_ms") >= open_minute_start).height > 0
    assert not drift.passed(0.0)
    aligned = compare_runtime(tmp_path, "live", until_ms=open_minute_start)
    assert aligned.max_rel_diff == 0.0 and aligned.total_a == df.filter(pl.col("ts_ms") < open_minute_start).height
    sink.close()
    assert compare_runtime(tmp_path, "live").max_rel_diff == 0.0

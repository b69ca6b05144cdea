"""The SQLite bulk process (ADBC in a child process): big flushes and big reads go through it, and what it
stores and reads back is exactly what the row-by-row sqlite3 path stores and reads, storage classes
included; a lock held by another connection of this process is seen and retried; a dead child is
replaced without losing or doubling rows."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.sinks import SinkConfig, SqliteSignalSink, read_sqlite_signals, readers, sqlite_bulk
from alpha_assets.sinks import sqlite as sqlite_sink
from alpha_assets.sinks.sqlite_bulk import BulkChildError
from alpha_assets.sinks.synthetic import synthetic_signals
from tests.golden.digests import sqlite_digest
from tests.sinks.test_sqlite_commits import write_row_by_row


@pytest.fixture
def small_bulk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames of 1,000 rows or more take the bulk path (the default threshold needs 20k-row tests)."""
    monkeypatch.setattr(sqlite_sink, "BULK_ROWS", 1_000)


def _frame() -> pl.DataFrame:
    df = synthetic_signals(6_000, seed=61)
    other = df.head(1_500).with_columns(pl.lit("run-2").alias("run_id"))
    replay = df.slice(2_000, 1_200).with_columns(pl.col("score") + 1.0)  # same keys, other values: ignored
    return pl.concat([df, other, replay]).with_columns(
        pl.when(pl.col("seq") % 7 == 0).then(None).otherwise(pl.col("z_ofi")).alias("z_ofi"),
        pl.when(pl.col("seq") % 5 == 0).then(pl.lit(2.0)).otherwise(pl.col("price")).alias("price"))


def test_bulk_flush_stores_what_one_insert_per_row_stores(tmp_path: Path, small_bulk: None) -> None:
    frame = _frame()
    sink = SqliteSignalSink(tmp_path / "bulk.db", SinkConfig(kind="sqlite", flush_ms=0))
    for part in frame.iter_slices(2_900):
        sink.write(part)
    assert sink._bulk._proc is not None, "the bulk process was not used"
    sink.close()
    write_row_by_row(tmp_path / "plain.db", frame)
    assert sqlite_digest(tmp_path / "bulk.db") == sqlite_digest(tmp_path / "plain.db")
    assert sink.counters()["rows_written"] == 7_500 and sink.counters()["duplicates_skipped"] == 1_200


def test_bulk_flush_waits_out_a_lock_held_in_this_process(tmp_path: Path, small_bulk: None) -> None:
    """The holder is a sqlite3 connection of the test process: the child, another process, must see its lock."""
    db = tmp_path / "signals.db"
    cfg = SinkConfig(kind="sqlite", flush_ms=0, busy_timeout_ms=10, retry_backoff_ms=20, retry_backoff_max_ms=200,
                     retry_max=40)
    sink = SqliteSignalSink(db, cfg)
    df = synthetic_signals(4_000, seed=62)
    sink.write(df.head(1_000))  # the bulk process is up before the lock is taken
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    timer = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    timer.start()
    try:
        sink.write(df.slice(1_000))
    finally:
        timer.join()
        holder.close()
    c = sink.counters()
    assert c["retries"] >= 1 and c["errors"] == c["retries"] and c["rows_written"] == 4_000 and c["pending"] == 0
    sink.close()
    assert read_sqlite_signals(db).height == 4_000


def test_a_dead_bulk_process_is_replaced_and_no_row_is_lost(tmp_path: Path, small_bulk: None) -> None:
    db = tmp_path / "signals.db"
    df = synthetic_signals(4_000, seed=63)
    sink = SqliteSignalSink(db, SinkConfig(kind="sqlite", flush_ms=0, retry_max=0))
    sink.write(df.head(2_000))
    proc = sink._bulk._proc
    assert proc is not None
    os.kill(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait()
    sink.write(df.slice(1_000, 1_500))  # a new process: 1,000 replayed keys, 500 new ones
    assert sink._bulk._proc is not proc
    sink.close()
    c = sink.counters()
    assert c["rows_written"] == 2_500 and c["duplicates_skipped"] == 1_000
    assert read_sqlite_signals(db).height == 2_500


def test_a_bulk_process_dying_mid_request_keeps_the_rows_pending(tmp_path: Path, small_bulk: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    dies = tmp_path / "dies.py"
    dies.write_text("import sys\nsys.stdin.readline()\nsys.stderr.write('gone')\nsys.exit(3)\n")
    db = tmp_path / "signals.db"
    df = synthetic_signals(3_000, seed=65)
    sink = SqliteSignalSink(db, SinkConfig(kind="sqlite", flush_ms=0, retry_max=0))
    monkeypatch.setattr(sqlite_bulk, "CHILD", dies)
    with pytest.raises(BulkChildError, match=r"bulk process ended \(exit 3\): gone"):
        sink.write(df)
    assert sink.pending_rows == 3_000 and sink.counters()["rows_written"] == 0
    monkeypatch.setattr(sqlite_bulk, "CHILD", sqlite_bulk.Path(sqlite_bulk.__file__).with_name("sqlite_bulk_child.py"))
    sink.flush()  # the real process takes them
    sink.close()
    assert sink.counters()["rows_written"] == 3_000
    assert read_sqlite_signals(db).height == 3_000


def test_bulk_read_equals_the_row_by_row_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Filters as parity uses them; a text column null over the whole first fetched batch (the driver
    guesses types from it) still reads as text."""
    db = tmp_path / "signals.db"
    df = synthetic_signals(80_000, seed=64).with_columns(
        pl.when(pl.int_range(pl.len()) < 70_000).then(None).otherwise(pl.col("guard_reason")).alias("guard_reason"))
    sink = SqliteSignalSink(db, SinkConfig(kind="sqlite", flush_ms=0))
    sink.write(df)
    sink.close()
    for where in ({}, {"run_id": "run-1", "symbol": "BTCUSDT"}, {"symbol": "ETHUSDT", "date": "2024-01-07"},
                  {"run_id": "absent"}):
        monkeypatch.setattr(readers, "BULK_READ_ROWS", 10**12)
        small = read_sqlite_signals(db, **where)
        monkeypatch.setattr(readers, "BULK_READ_ROWS", 0)
        bulk = read_sqlite_signals(db, **where)
        assert bulk.schema == small.schema and bulk.equals(small), where
    whole = read_sqlite_signals(db)
    assert whole.height == 80_000 and whole.get_column("guard_reason").drop_nulls().len() > 0

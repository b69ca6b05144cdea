"""A big SQLite flush commits in slices (another writer of the file gets the lock in between); the rows
of a slice that could not be committed stay pending, and the stored rows equal a one-transaction flush."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.sinks import SinkConfig, SinkWriteError, SqliteSignalSink, read_sqlite_signals
from alpha_assets.sinks import sqlite as sqlite_sink
from alpha_assets.sinks.synthetic import synthetic_signals
from tests.golden.digests import sqlite_digest


def write_row_by_row(db: Path, frame: pl.DataFrame) -> None:
    """What one INSERT OR IGNORE per row, in key order, stores: the reference of the bulk writers."""
    plain = sqlite3.connect(db)
    plain.execute(sqlite_sink.create_table_sql())
    plain.executemany(sqlite_sink.insert_sql(), sqlite_sink.key_sorted(frame).rows())
    plain.commit()
    plain.close()


def test_sliced_flush_stores_what_one_transaction_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = synthetic_signals(5_500, seed=51)
    whole = SqliteSignalSink(tmp_path / "whole.db", SinkConfig(kind="sqlite", flush_ms=0))
    whole.write(df)
    whole.close()
    monkeypatch.setattr(sqlite_sink, "COMMIT_ROWS", 1_000)
    sliced = SqliteSignalSink(tmp_path / "sliced.db", SinkConfig(kind="sqlite", flush_ms=0))
    sliced.write(df)
    sliced.close()
    assert sqlite_digest(tmp_path / "sliced.db") == sqlite_digest(tmp_path / "whole.db")
    assert sliced.counters()["rows_written"] == 5_500 and sliced.counters()["batches"] == 1


def test_a_slice_that_cannot_commit_keeps_the_rest_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_sink, "COMMIT_ROWS", 1_000)
    df = synthetic_signals(5_500, seed=52)
    sink = SqliteSignalSink(tmp_path / "s.db", SinkConfig(kind="sqlite", flush_ms=0, retry_max=0))
    real_insert, calls = sink._insert, [0]

    def insert(data):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 3:
            raise sqlite3.OperationalError("database is locked")
        return real_insert(data)

    monkeypatch.setattr(sink, "_insert", insert)
    with pytest.raises(SinkWriteError, match="3500 rows are still pending"):
        sink.write(df)
    assert sink.counters()["rows_written"] == 2_000 and sink.pending_rows == 3_500
    sink.flush()  # the lock is gone: the rest lands, nothing twice
    sink.close()
    assert sink.counters()["rows_written"] == 5_500 and sink.counters()["duplicates_skipped"] == 0
    assert read_sqlite_signals(tmp_path / "s.db").height == 5_500


def test_bulk_statements_store_what_one_insert_per_row_stores(tmp_path: Path) -> None:
    """Shared run/symbol parameters, 0/1 for booleans and multi-row VALUES: the same rows, values and
    storage classes as the plain statement row by row, for several runs and symbols with replayed keys."""
    import polars as pl

    df = synthetic_signals(4_000, seed=53)
    other = df.head(700).with_columns(pl.lit("run-2").alias("run_id"))
    replay = df.slice(1_000, 300).with_columns(pl.col("score") + 1.0)  # same keys, other values: ignored
    frame = pl.concat([df, other, replay]).with_columns(
        pl.when(pl.col("seq") % 7 == 0).then(None).otherwise(pl.col("z_ofi")).alias("z_ofi"))
    sink = SqliteSignalSink(tmp_path / "bulk.db", SinkConfig(kind="sqlite", flush_ms=0))
    for part in frame.iter_slices(1_500):
        sink.write(part)
    sink.close()
    write_row_by_row(tmp_path / "plain.db", frame)
    assert sqlite_digest(tmp_path / "bulk.db") == sqlite_digest(tmp_path / "plain.db")
    assert sink.counters()["rows_written"] == 4_700 and sink.counters()["duplicates_skipped"] == 300

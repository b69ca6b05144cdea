"""A big SQLite flush commits in slices (another writer of the file gets the lock in between); the rows
of a slice that could not be committed stay pending, and the stored rows equal a one-transaction flush."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from alpha_assets.sinks import SinkConfig, SinkWriteError, SqliteSignalSink, read_sqlite_signals
from alpha_assets.sinks import sqlite as sqlite_sink
from alpha_assets.sinks.synthetic import synthetic_signals
from tests.golden.digests import sqlite_digest


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

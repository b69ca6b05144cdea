"""A real second connection holding BEGIN EXCLUSIVE, and a really full database: retried, counted, kept."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from alpha_assets.sinks import SinkConfig, SinkWriteError, SqliteSignalSink, read_sqlite_signals
from alpha_assets.sinks.synthetic import synthetic_signals


def cfg(**kw) -> SinkConfig:
    base = {"kind": "sqlite", "flush_ms": 0, "busy_timeout_ms": 10, "retry_backoff_ms": 20,
            "retry_backoff_max_ms": 200, "retry_max": 12}
    return SinkConfig(**{**base, **kw})


def test_locked_database_is_retried_with_backoff_until_released(tmp_path: Path) -> None:
    db = tmp_path / "signals.db"
    waits: list[float] = []

    def sleep(s: float) -> None:  # record the backoff, still really wait
        waits.append(s)
        time.sleep(s)

    sink = SqliteSignalSink(db, cfg(), sleep=sleep)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    released = threading.Event()

    def release() -> None:
        holder.execute("COMMIT")
        released.set()

    timer = threading.Timer(0.4, release)
    timer.start()
    df = synthetic_signals(5_000, seed=4)
    try:
        sink.write(df)  # flush_ms=0: written now, through the lock
    finally:
        timer.join()
        holder.close()
    c = sink.counters()
    assert released.is_set()
    assert c["retries"] >= 2 and c["errors"] == c["retries"] and c["gave_up"] == 0
    assert waits[:3] == [0.02, 0.04, 0.08]  # exponential
    assert c["rows_written"] == 5_000 and c["pending"] == 0
    sink.close()
    assert read_sqlite_signals(db).height == 5_000


def test_retry_budget_exhausted_raises_and_keeps_rows(tmp_path: Path) -> None:
    db = tmp_path / "signals.db"
    sink = SqliteSignalSink(db, cfg(retry_max=2, retry_backoff_ms=5))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    df = synthetic_signals(1_000, seed=8)
    with pytest.raises(SinkWriteError, match="locked.*after 2 retries.*1000 rows are still pending"):
        sink.write(df)
    c = sink.counters()
    assert c["retries"] == 2 and c["errors"] == 3 and c["gave_up"] == 1 and c["pending"] == 1_000
    holder.execute("COMMIT")
    holder.close()
    sink.flush()  # nothing was dropped: the rows land once the lock is gone
    assert sink.counters()["pending"] == 0
    sink.close()
    assert read_sqlite_signals(db).height == 1_000


def test_full_database_is_retried(tmp_path: Path) -> None:
    db = tmp_path / "signals.db"
    grown: list[float] = []

    def make_room(s: float) -> None:  # the operator frees space while we back off
        grown.append(s)
        sink.conn.execute("PRAGMA max_page_count=1073741823")

    sink = SqliteSignalSink(db, cfg(), sleep=make_room)
    pages = sink.conn.execute("PRAGMA page_count").fetchone()[0]
    sink.conn.execute(f"PRAGMA max_page_count={pages}")  # a real SQLITE_FULL on the next insert
    sink.write(synthetic_signals(2_000, seed=6))
    c = sink.counters()
    assert grown and c["retries"] == 1 and c["errors"] == 1 and c["rows_written"] == 2_000
    sink.close()
    assert read_sqlite_signals(db).height == 2_000

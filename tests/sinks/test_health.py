"""SQLite health probe against a real database that grows, then stalls."""

from __future__ import annotations

from pathlib import Path

from alpha_assets.sinks import SinkConfig, SqliteHealthProbe, SqliteSignalSink
from alpha_assets.sinks.synthetic import synthetic_signals


def test_probe_sees_missing_table_growth_and_stall(tmp_path: Path) -> None:
    db = tmp_path / "signals.db"
    cfg = SinkConfig(kind="sqlite", flush_ms=0, min_growth_window_seconds=10, min_growth_count=100)
    probe = SqliteHealthProbe.from_config(db, cfg, run_id="run-1")
    assert probe.check(0).reason == "no_database"
    import sqlite3

    sqlite3.connect(db).close()
    st = probe.check(1_000)
    assert not st.ok and st.reason == "no_table" and not st.table_exists
    sink = SqliteSignalSink(db, cfg)
    df = synthetic_signals(1_000, seed=1)
    sink.write(df.head(300))
    st = probe.check(2_000)
    assert st.ok and st.reason == "warming_up" and st.rows == 300
    sink.write(df.slice(300, 400))
    st = probe.check(12_500)  # baseline: the 2 s sample (10.5 s old)
    assert st.ok and st.growth == 400 and st.rows == 700 and st.window_s == 10.5
    sink.write(df.slice(700, 50))
    st = probe.check(23_000)  # only 50 rows in the last window
    assert not st.ok and st.reason == "stalled" and st.growth == 50
    other = SqliteHealthProbe(db, min_growth_window_seconds=1, min_growth_count=1, run_id="other-run")
    other.check(0)
    assert other.check(2_000).reason == "stalled"  # rows of another run do not count
    sink.close()


def test_probe_uses_injected_clock(tmp_path: Path) -> None:
    db = tmp_path / "signals.db"
    sink = SqliteSignalSink(db, SinkConfig(kind="sqlite", flush_ms=0))
    now = [0.0]
    probe = SqliteHealthProbe(db, min_growth_window_seconds=5, min_growth_count=1, clock=lambda: now[0])
    assert probe.check().reason == "warming_up"
    now[0] = 6_000.0
    assert probe.check().reason == "stalled"
    sink.write(synthetic_signals(10))
    now[0] = 12_000.0
    st = probe.check()
    assert st.ok and st.growth == 10 and st.checked_at_ms == 12_000
    sink.close()

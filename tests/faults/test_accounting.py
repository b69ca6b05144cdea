"""Loss accounting on real files: landing parquet, watermarks, heartbeat, both real signal sinks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.faults.accounting import account, read_feed_log
from alpha_assets.live.workers.common import heartbeat_path, watermark_path
from alpha_assets.market.landing import partition_dir
from alpha_assets.sinks import SinkConfig, make_sink
from alpha_assets.sinks.synthetic import synthetic_signals

RUN = "acc_run"
SYM = "BTCUSDT"
BASE = 1_763_856_000_000  # a minute boundary (2025-11-23 00:00 UTC)
IDS = list(range(1000, 1200))  # 200 trades, 250 ms apart, inside the first minute


def build(root: Path, *, drop_landed: int | None = None, pending: int = 2) -> dict[str, list[tuple[int, int]]]:
    times = [BASE + 250 * k for k in range(len(IDS))]
    landed = pl.DataFrame({"agg_trade_id": IDS, "event_time_ms": times})
    if drop_landed is not None:
        landed = landed.filter(pl.col("agg_trade_id") != drop_landed)
    part = partition_dir(root, "raw", "2025-11-23", SYM)
    part.mkdir(parents=True)
    landed.write_parquet(part / "trades_0000.parquet")
    wm = watermark_path(root, RUN, SYM)
    wm.parent.mkdir(parents=True)
    wm.write_text(json.dumps({"symbol": SYM, "closed_through_ms": BASE + 60_000}))
    hb = heartbeat_path(root, "signal")
    hb.parent.mkdir(parents=True)
    hb.write_text(json.dumps({"next_minute_ms": {SYM: BASE + 60_000}, "pending_trades": {SYM: pending}}))
    # one signal per landed trade except the `pending` newest (held back by the engine)
    due = landed.sort("agg_trade_id").head(landed.height - pending)
    sig = synthetic_signals(due.height, run_id=RUN, symbols=(SYM,), seed=3)
    sig = sig.with_columns(seq=due["agg_trade_id"], ts_ms=due["event_time_ms"], created_at=due["event_time_ms"] + 5)
    sink = make_sink(SinkConfig(kind="dual"), root / "runtime")
    sink.write(sig)
    sink.flush()
    sink.close()
    # the feed produced 10 more trades after the last closed minute (not yet accountable)
    return {SYM: [(i, BASE + 250 * k) for k, i in enumerate(IDS + list(range(1200, 1210)))]}


def test_clean_run_accounts_to_zero(tmp_path: Path) -> None:
    feed = build(tmp_path)
    a = account(tmp_path, RUN, [SYM], feed)
    s = a.symbols[0]
    assert s.feed_trades == 200 and s.landed_trades == 200 and s.expected_signals == 198
    assert (a.trades_lost, a.trades_doubled, a.signals_lost, a.signals_doubled, a.signals_phantom) == (0, 0, 0, 0, 0)
    assert a.parity_max_rel_diff == 0.0 and a.parity["total_sqlite"] == 198


def test_lost_trade_lost_signal_and_doubled_line_are_counted(tmp_path: Path) -> None:
    feed = build(tmp_path, drop_landed=1050)
    con = sqlite3.connect(tmp_path / "runtime" / "signals.db")
    con.execute("DELETE FROM signals WHERE seq = 1100")
    con.commit()
    con.close()
    jsonl = sorted((tmp_path / "runtime" / "ready" / "signal" / SYM).glob("*.jsonl"))[0]
    lines = jsonl.read_text().splitlines()
    jsonl.write_text("\n".join([*lines, lines[10]]) + "\n")  # one key stored twice
    a = account(tmp_path, RUN, [SYM], feed)
    s = a.symbols[0]
    assert a.trades_lost == 1 and s.lost_trade_sample == [1050]
    assert s.signals_lost == {"sqlite": 1, "jsonl": 0}
    assert s.signals_doubled == {"sqlite": 0, "jsonl": 1}
    assert a.parity_max_rel_diff is not None and a.parity_max_rel_diff > 0
    assert a.parity["only_in_jsonl"] == 1


def test_held_back_trades_beyond_the_pending_count_are_lost(tmp_path: Path) -> None:
    feed = build(tmp_path, pending=5)  # signals exist up to id 1194
    hb = heartbeat_path(tmp_path, "signal")
    hb.write_text(json.dumps({"next_minute_ms": {SYM: BASE + 60_000}, "pending_trades": {SYM: 2}}))
    a = account(tmp_path, RUN, [SYM], feed)
    assert a.symbols[0].signals_lost["sqlite"] == 3


def test_feed_log_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "feed.json"
    p.write_text(json.dumps({SYM: [[1, 10], [2, 20]]}))
    assert read_feed_log(p) == {SYM: [(1, 10), (2, 20)]}
    with pytest.raises(FileNotFoundError):
        read_feed_log(tmp_path / "missing.json")

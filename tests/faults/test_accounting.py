"""Loss accounting on real files: the feed's log, landing parquet, both real signal sinks. The horizon
is what the feed sent and what landed (no worker heartbeat is read)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.faults.accounting import account, read_feed_log
from alpha_assets.market.landing import partition_dir
from alpha_assets.sinks import SinkConfig, make_sink
from alpha_assets.sinks.synthetic import synthetic_signals

RUN = "acc_run"
SYM = "BTCUSDT"
BASE = 1_763_856_000_000  # a minute boundary (2025-11-23 00:00 UTC)
IDS = list(range(1000, 1200))  # 200 trades, 250 ms apart, inside the first minute


def build(root: Path, *, drop_landed: int | None = None, sent_through: int = 1199) -> dict:
    times = [BASE + 250 * k for k in range(len(IDS))]
    landed = pl.DataFrame({"agg_trade_id": IDS, "event_time_ms": times})
    if drop_landed is not None:
        landed = landed.filter(pl.col("agg_trade_id") != drop_landed)
    part = partition_dir(root, "raw", "2025-11-23", SYM)
    part.mkdir(parents=True)
    landed.write_parquet(part / "trades_0000.parquet")
    # one signal per landed trade (the drain evaluated every one)
    due = landed.sort("agg_trade_id")
    sig = synthetic_signals(due.height, run_id=RUN, symbols=(SYM,), seed=3)
    sig = sig.with_columns(seq=due["agg_trade_id"], ts_ms=due["event_time_ms"], created_at=due["event_time_ms"] + 5)
    sink = make_sink(SinkConfig(kind="dual"), root / "runtime")
    sink.write(sig)
    sink.flush()
    sink.close()
    # the market produced 10 more trades the exchange never sent (the run ended): not accountable
    return {SYM: ([(i, BASE + 250 * k) for k, i in enumerate(IDS + list(range(1200, 1210)))], sent_through)}


def test_clean_run_accounts_to_zero(tmp_path: Path) -> None:
    feed = build(tmp_path)
    a = account(tmp_path, RUN, [SYM], feed)
    s = a.symbols[0]
    assert s.feed_trades == 200 and s.landed_trades == 200 and s.expected_signals == 200
    assert (a.trades_lost, a.trades_doubled, a.signals_lost, a.signals_doubled, a.signals_phantom) == (0, 0, 0, 0, 0)
    assert a.parity_max_rel_diff == 0.0 and a.parity["total_sqlite"] == 200


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


def test_trades_sent_but_never_landed_are_lost(tmp_path: Path) -> None:
    feed = build(tmp_path, sent_through=1205)  # six trades sent after the last one that landed
    a = account(tmp_path, RUN, [SYM], feed)
    assert a.trades_lost == 6 and a.symbols[0].lost_trade_sample == list(range(1200, 1206))
    assert a.signals_lost == 0  # their signals are not due: the trades never landed


def test_feed_log_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "feed.json"
    p.write_text(json.dumps({SYM: {"trades": [[1, 10], [2, 20]], "sent_through": 2}}))
    assert read_feed_log(p) == {SYM: ([(1, 10), (2, 20)], 2)}
    with pytest.raises(FileNotFoundError):
        read_feed_log(tmp_path / "missing.json")

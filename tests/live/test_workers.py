"""Workers in-process on landed simulator data: signal → SQLite → broker, restart without doubling."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from alpha_assets.engine import step
from alpha_assets.live.workers.broker import Broker
from alpha_assets.live.workers.common import MINUTE_MS, WorkerConfig, minute_parts
from alpha_assets.live.workers.signal import SymbolTail
from alpha_assets.market.landing import LandingWriter
from alpha_assets.market.simulator import day_start_ms, simulate_day
from alpha_assets.sinks import SinkConfig, make_sink
from alpha_assets.sinks.readers import read_sqlite_signals

SYM, DATE = "BTCUSDT", "2024-03-04"


def land_minutes(root: Path, n: int) -> int:
    day = simulate_day(SYM, DATE, seed=3)
    t0 = day_start_ms(DATE) + 14 * 3_600_000
    w = LandingWriter(root, SYM)
    for m in range(n):
        lo, hi = t0 + m * MINUTE_MS, t0 + (m + 1) * MINUTE_MS
        date, hhmm = minute_parts(lo)
        for kind in ("trades", "book"):
            w.write_minute(kind, date, hhmm, day[kind].filter(pl.col("event_time_ms").is_between(lo, hi - 1)))
    return t0


def outbox_events(runtime: Path) -> list[dict]:
    return [json.loads(line) for p in sorted((runtime / "exec_events").rglob("*.jsonl"))
            for line in p.read_text().splitlines() if line]


def test_signal_checkpoint_resume_and_sqlite_broker_without_doubling(tmp_path: Path) -> None:
    t0 = land_minutes(tmp_path, 3)
    cfg = WorkerConfig(run_id="w1", data_root=tmp_path, symbols=[SYM], start_ms=t0, sink="sqlite",
                       input_mode="preview")
    sink = make_sink(SinkConfig(kind="sqlite", flush_ms=0), cfg.runtime_dir)
    tail = SymbolTail(cfg, SYM, cfg.checkpoint_dir())
    minute, tr, bk = tail.next_chunk()
    tail.state, rows = step(tail.state, tr, bk)
    sink.write(rows)
    sink.flush()
    tail.next_minute = minute + MINUTE_MS
    tail.rows_out += rows.height
    tail.checkpoint()
    # a restart: a new tail resumes at minute 2 with the engine state of minute 1
    again = SymbolTail(cfg, SYM, cfg.checkpoint_dir())
    assert again.resumed and again.next_minute == t0 + MINUTE_MS and again.rows_out == rows.height
    while (chunk := again.next_chunk()) is not None:
        m, tr, bk = chunk
        again.state, more = step(again.state, tr, bk)
        sink.write(more)
        sink.flush()
        again.next_minute = m + MINUTE_MS
    sink.close()
    sig = read_sqlite_signals(cfg.runtime_dir / "signals.db", run_id="w1")
    landed = pl.concat([pl.read_parquet(p) for p in tmp_path.glob("landing/raw/*/*/trades_*.parquet")])
    assert sig["seq"].is_unique().all()
    assert set(sig["seq"]) <= set(landed["agg_trade_id"])
    assert landed.height - sig.height == again.state.pending_trades

    broker = Broker(cfg)
    assert broker.poll()
    n_orders = broker.c["orders"]
    assert n_orders > 0 and broker.c["buy"] + broker.c["sell"] == n_orders
    assert not broker.poll()  # nothing new: nothing routed twice
    broker.outbox.close()
    events = outbox_events(cfg.runtime_dir)
    assert len(events) == n_orders
    restarted = Broker(cfg)  # resumes after the last routed seq
    assert not restarted.poll() and restarted.c["orders"] == 0
    restarted.outbox.close()
    assert len(outbox_events(cfg.runtime_dir)) == n_orders


def test_drain_consumes_every_landed_minute_when_the_run_began_in_an_empty_one(tmp_path: Path) -> None:
    # The soak started 3 s before a minute boundary: nothing landed in that minute, two minutes after it.
    t0 = land_minutes(tmp_path, 2)
    start = t0 - 3_000
    (tmp_path / "landing/raw").joinpath(f"date={minute_parts(t0)[0]}", f"symbol={SYM}", "trades_9999.parquet") \
        .write_bytes(b"")  # a file that only looks like a minute: ignored, not fatal
    cfg = WorkerConfig(run_id="w2", data_root=tmp_path, symbols=[SYM], start_ms=start, sink="sqlite")
    tail = SymbolTail(cfg, SYM, cfg.checkpoint_dir(), drain=True)
    assert tail.next_minute == t0 - MINUTE_MS and tail.last_landed_minute() == t0 + MINUTE_MS
    minutes, rows_out = [], 0
    while (chunk := tail.next_chunk()) is not None:
        minute, tr, bk = chunk
        tail.state, rows = step(tail.state, tr, bk)
        rows_out += rows.height
        tail.next_minute = minute + MINUTE_MS
        minutes.append((minute, tr is None and bk is None))
    # the empty first minute is stepped over, both landed minutes are consumed, then it stops
    assert minutes == [(t0 - MINUTE_MS, True), (t0, False), (t0 + MINUTE_MS, False)]
    landed = pl.concat([pl.read_parquet(p) for p in tmp_path.glob("landing/raw/*/*/trades_1[0-9]*.parquet")])
    assert rows_out > 0 and rows_out + tail.state.pending_trades == landed.height

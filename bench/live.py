"""Signal-worker throughput and event→sink latency at 1× and 10× a busy market.

The worker's own path is measured: minute files landed by ``LandingWriter`` → ``SymbolTail``
(parquet read) → ``engine.step`` → sink write + flush (dual: JSONL + SQLite) → JSONL publish →
atomic checkpoint. The market is the seeded simulator around its intraday peak (14:00 UTC);
10× compresses ten minutes of it into one (ten times the trades and book updates per minute).

Figures printed:
* sustained events/s = (trades + book rows) / wall time spent processing;
* compute latency per minute = hand-over of the minute → rows durable in the sink;
* event→sink latency per event = (minute end − event time) + lateness + poll/2 + compute of its
  minute: what a live event waits under the minute hand-over design (modelled from measured parts).

    .venv/bin/python bench/live.py [--minutes 10] [--symbol BTCUSDT]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from alpha_assets.engine import step
from alpha_assets.live.workers.common import MINUTE_MS, WorkerConfig, minute_parts
from alpha_assets.live.workers.signal import SymbolTail, publish_before
from alpha_assets.market.landing import LandingWriter
from alpha_assets.market.simulator import day_start_ms, simulate_day
from alpha_assets.sinks import SinkConfig, make_sink

DATE = "2024-03-04"


def market(symbol: str, minutes: int, factor: int) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """`minutes` minutes of market at `factor`× density, starting at a minute boundary."""
    day = simulate_day(symbol, DATE, seed=7)
    t0 = day_start_ms(DATE) + 14 * 3_600_000
    span = minutes * factor * MINUTE_MS
    out = []
    for f in (day["trades"], day["book"]):
        w = f.filter((pl.col("event_time_ms") >= t0) & (pl.col("event_time_ms") < t0 + span))
        squeeze = (t0 + (pl.col("event_time_ms") - t0) // factor)
        cols = [squeeze.alias("event_time_ms")]
        if "trade_time_ms" in w.columns:
            cols.append((t0 + (pl.col("trade_time_ms") - t0) // factor).alias("trade_time_ms"))
        cols.append((t0 + (pl.col("recv_time_ms") - t0) // factor).alias("recv_time_ms"))
        out.append(w.with_columns(cols))
    trades, book = out
    book = book.unique("event_time_ms", keep="last", maintain_order=True)  # 10 ms grid after squeezing
    return trades, book, t0


def land(root: Path, symbol: str, trades: pl.DataFrame, book: pl.DataFrame, t0: int, minutes: int) -> None:
    w = LandingWriter(root, symbol)
    for m in range(minutes):
        lo, hi = t0 + m * MINUTE_MS, t0 + (m + 1) * MINUTE_MS
        date, hhmm = minute_parts(lo)
        w.write_minute("trades", date, hhmm, trades.filter(pl.col("event_time_ms").is_between(lo, hi - 1)))
        w.write_minute("book", date, hhmm, book.filter(pl.col("event_time_ms").is_between(lo, hi - 1)))


def run(symbol: str, minutes: int, factor: int, lateness_ms: int, poll_s: float) -> dict[str, float]:
    trades, book, t0 = market(symbol, minutes, factor)
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    try:
        land(root, symbol, trades, book, t0, minutes)
        cfg = WorkerConfig(run_id="bench", data_root=root, symbols=[symbol], start_ms=t0, sink="dual",
                           input_mode="preview")
        sink = make_sink(SinkConfig(kind="dual"), cfg.runtime_dir)
        tail = SymbolTail(cfg, symbol, cfg.checkpoint_dir())
        step(tail.state, trades.head(0), book.head(0))  # compile outside the timed loop
        compute_ms, events, lat = [], 0, []
        total = 0.0
        while (chunk := tail.next_chunk()) is not None:
            minute, tr, bk = chunk
            t_start = time.perf_counter()
            tr = tr if tr is not None else trades.head(0)
            bk = bk if bk is not None else book.head(0)
            tail.state, rows = step(tail.state, tr, bk)
            if rows.height:
                sink.write(rows)
            sink.flush()
            tail.next_minute = minute + MINUTE_MS
            publish_before(sink, minute)
            tail.checkpoint()
            dt = time.perf_counter() - t_start
            total += dt
            compute_ms.append(dt * 1000)
            events += tr.height + bk.height
            wait = (minute + MINUTE_MS - tr["event_time_ms"].to_numpy()) + lateness_ms + poll_s * 500 + dt * 1000
            lat.append(wait)
        sink.close()
        e2e = np.concatenate(lat) if lat else np.array([0.0])
        c = np.array(compute_ms)
        return {
            "factor": factor, "minutes": len(compute_ms), "trades": trades.height, "book_rows": book.height,
            "events_per_s": events / total if total else float("nan"),
            "market_events_per_s": events / (len(compute_ms) * 60),
            "compute_ms_p50": float(np.percentile(c, 50)), "compute_ms_p95": float(np.percentile(c, 95)),
            "compute_ms_p99": float(np.percentile(c, 99)),
            "e2e_ms_p50": float(np.percentile(e2e, 50)), "e2e_ms_p95": float(np.percentile(e2e, 95)),
            "e2e_ms_p99": float(np.percentile(e2e, 99)),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--lateness-ms", type=int, default=3000)
    ap.add_argument("--poll-s", type=float, default=0.5)
    args = ap.parse_args()
    print(f"signal worker, {args.symbol}, dual sink, {args.minutes} minutes per run")
    for factor in (1, 10):
        r = run(args.symbol, args.minutes, factor, args.lateness_ms, args.poll_s)
        print(f"{factor:>3}x  market {r['market_events_per_s']:>8.0f} ev/s  sustained {r['events_per_s']:>9.0f} ev/s  "
              f"({r['trades']} trades, {r['book_rows']} book rows)  "
              f"compute/minute p50/p95/p99 {r['compute_ms_p50']:.0f}/{r['compute_ms_p95']:.0f}/{r['compute_ms_p99']:.0f} ms  "
              f"event→sink p50/p95/p99 {r['e2e_ms_p50'] / 1000:.1f}/{r['e2e_ms_p95'] / 1000:.1f}/"
              f"{r['e2e_ms_p99'] / 1000:.1f} s")


if __name__ == "__main__":
    main()

"""Executor throughput: orders/s and p50/p95/p99 submit latency of the backtest (each slippage
model) and mock executors, plus route_signals end to end (pre-trade + risk + executor).

    .venv/bin/python bench/executors.py [--orders 50000] [--source real|synthetic] [--seed 7]

``real`` uses the Binance USD-M BTCUSDT bookTicker of 2024-01-07 00:00-00:10 from the shared data
(best level only: levels 2-5 empty, so the taker walk charges depth beyond level 1);
``synthetic`` a seeded 5-level book. Orders are placed at seeded random times over the book.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executors.backtest import BacktestConfig, BacktestExecutor  # noqa: E402
from executors.batch import RouteConfig, Router, route_signals  # noqa: E402
from executors.book import BookIndex  # noqa: E402
from executors.contract import OrderCtx  # noqa: E402
from executors.mock import MockExecutor  # noqa: E402
from executors.pretrade import PreTradeConfig  # noqa: E402
from executors.risk import RiskConfig  # noqa: E402
from executors.testing.synthetic import synthetic_book, synthetic_signals  # noqa: E402


def real_book() -> pl.DataFrame | None:
    try:
        from alpha_assets.paths import shared_data_dir
        p = shared_data_dir() / "binance_um_20240107" / "BTCUSDT-2024-01-07-h00m00-10.parquet"
    except Exception:  # fall back to synthetic when the shared data is absent
        return None
    if not p.exists():
        return None
    raw = pl.read_parquet(p)
    cols = [pl.lit("BTCUSDT").alias("symbol"), (pl.col("ts_ns") // 1_000_000).alias("event_time_ms"),
            pl.col("update_id").alias("last_update_id"), pl.col("bid_px").alias("bid_px_1"),
            pl.col("bid_qty").alias("bid_qty_1"), pl.col("ask_px").alias("ask_px_1"),
            pl.col("ask_qty").alias("ask_qty_1")]
    for i in range(2, 6):
        cols += [pl.lit(None, pl.Float64).alias(f"{s}_{k}_{i}") for s in ("bid", "ask") for k in ("px", "qty")]
    return raw.select(cols).sort("event_time_ms")


def make_orders(book: pl.DataFrame, n: int, seed: int) -> list[OrderCtx]:
    rng = np.random.default_rng(seed)
    ts = book["event_time_ms"].to_numpy()
    idx = np.sort(rng.integers(0, len(ts), n))
    bid, ask = book["bid_px_1"].to_numpy(), book["ask_px_1"].to_numpy()
    sides = rng.random(n) < 0.5
    strong = rng.random(n) < 0.3
    out = []
    for k, i in enumerate(idx.tolist()):
        buy = bool(sides[k])
        out.append(OrderCtx(ts_ms=int(ts[i]) + 3, event_ts_ms=int(ts[i]), symbol="BTCUSDT", side="BUY" if buy else "SELL",
                            qty=float(rng.uniform(0.001, 0.5)), px_intent=float(ask[i] if buy else bid[i]),
                            tick_size=0.1, step_size=0.001, signal_seq=k,
                            signal_type=("strong_" if strong[k] else "") + ("buy" if buy else "sell")))
    return out


def run(name: str, ex: object, orders: list[OrderCtx]) -> None:
    lat = np.empty(len(orders), dtype=np.int64)
    submit = ex.submit  # type: ignore[attr-defined]
    statuses: dict[str, int] = {}
    t0 = time.perf_counter()
    for k, o in enumerate(orders):
        a = time.perf_counter_ns()
        r = submit(o)
        lat[k] = time.perf_counter_ns() - a
        statuses[r.status] = statuses.get(r.status, 0) + 1
    dt = time.perf_counter() - t0
    p50, p95, p99 = np.percentile(lat / 1000.0, [50, 95, 99])
    print(f"{name:<22} {len(orders) / dt:>10,.0f} orders/s   submit p50 {p50:7.1f} us  p95 {p95:7.1f} us  "
          f"p99 {p99:7.1f} us   {statuses}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--source", choices=("real", "synthetic"), default="real")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # sampled order logs would dominate the timing
    book = real_book() if a.source == "real" else None
    src = "real BTCUSDT bookTicker 2024-01-07 00:00-00:10 (level 1 only)"
    if book is None:
        book = synthetic_book(n=200_000, seed=a.seed)
        src = "synthetic 5-level book, 200,000 snapshots"
    print(f"book: {src}, {book.height:,} snapshots; {a.orders:,} orders; python {sys.version.split()[0]}")
    idx = BookIndex(book)
    orders = make_orders(book, a.orders, a.seed)
    for model in ("fixed_bps", "taker_book", "maker_queue"):
        run(f"backtest/{model}", BacktestExecutor(idx, BacktestConfig(slippage=model, maker_horizon_ms=10_000)),
            orders)
    run("mock", MockExecutor(idx), orders)
    sig = synthetic_signals(book, n=a.orders * 20, seed=a.seed, active_frac=0.05)
    n_active = sig.filter(pl.col("signal_type") != "neutral").height
    # default gates deny most orders once the random signals lose; "open" lets every order reach the executor
    open_gates = RouteConfig(risk=RiskConfig(loss_pause_ms=0, max_daily_loss_ratio=1.0),
                             pretrade=PreTradeConfig(min_consistency=0.0))
    print(f"route_signals over {sig.height:,} signal rows ({n_active:,} non-neutral):")
    for gates, cfg in (("default", RouteConfig()), ("open", open_gates)):
        for kind in ("backtest", "mock"):
            t0 = time.perf_counter()
            out = route_signals(sig, book, kind, cfg)
            dt = time.perf_counter() - t0
            filled = out.filter(pl.col("status") == "filled").height
            print(f"  {kind:<8} gates={gates:<7} {out.height / dt:>10,.0f} orders/s  {out.height:,} orders, "
                  f"{filled:,} filled, {dt:.2f} s")
    # the live broker's form: one Router, a call per minute of signals with that minute's book
    minutes = sig.with_columns((pl.col("ts_ms") // 60_000).alias("_m")).partition_by("_m", maintain_order=True)
    bts = book["event_time_ms"]
    router = Router("mock", open_gates)
    t0 = time.perf_counter()
    n = 0
    for part in minutes:
        lo, hi = int(part["ts_ms"].min()), int(part["ts_ms"].max())
        i0, i1 = int(bts.search_sorted(lo - 120_000)), int(bts.search_sorted(hi + 1_000, side="right"))
        n += router.route(part.drop("_m"), book.slice(i0, i1 - i0)).height
    dt = time.perf_counter() - t0
    print(f"  mock     gates=open    Router per minute ({len(minutes)} calls): {n / dt:>8,.0f} orders/s, "
          f"{dt / len(minutes) * 1e3:.1f} ms per call")


if __name__ == "__main__":
    main()

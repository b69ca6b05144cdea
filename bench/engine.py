"""Engine throughput on one simulated BTCUSDT day: events/s for OFI, CVD, fusion and the
whole features+signals path, plus the count of each signal_type; then, per book join
(event_time, arrival), the live step's latency per call for 1, 10 and 50 events, and the
whole day in arrival mode.

    .venv/bin/python bench/engine.py [--hours 24] [--seed 7] [--steps 3000]

Uses alpha_assets.market.simulator.simulate_day when importable, else the engine's own
seeded synthetic day (alpha_assets.engine.synthetic); the output says which.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # "one core": polars' pool pinned before import

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from alpha_assets.engine import (  # noqa: E402
    EngineConfig,
    compute_features,
    compute_signals,
    initial_state,
    resolve_config,
    step,
    step_rows,
)
from alpha_assets.engine.cvd import cvd_initial_state, cvd_run  # noqa: E402
from alpha_assets.engine.fusion import fusion_initial_state, fusion_run  # noqa: E402
from alpha_assets.engine.ofi import ofi_initial_state, ofi_run  # noqa: E402
from alpha_assets.engine.pipeline import BOOK_SCHEMA, TRADE_SCHEMA, normalise  # noqa: E402
from alpha_assets.engine.synthetic import with_ingest_seq  # noqa: E402


def load_day(symbol: str, date: str, seed: int, hours: float) -> tuple[dict[str, pl.DataFrame], str]:
    try:
        from alpha_assets.market.simulator import simulate_day  # type: ignore[import-not-found]

        return simulate_day(symbol, date, seed=seed), "alpha_assets.market.simulator.simulate_day"
    except ImportError:
        from alpha_assets.engine.synthetic import synthetic_day

        return synthetic_day(symbol, date, seed=seed, hours=hours), "alpha_assets.engine.synthetic (simulator not importable)"


def timed(fn, repeat: int = 5) -> float:
    """Best of `repeat` runs: sustained throughput once the allocator has its pages."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--date", default="2024-01-07")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--steps", type=int, default=3000, help="timed steps per chunk size and mode")
    args = ap.parse_args()
    day, source = load_day(args.symbol, args.date, args.seed, args.hours)
    trades, book = day["trades"], day["book"]
    cfg = EngineConfig()
    print(f"polars threads: {pl.thread_pool_size()}, numba kernels single-threaded")
    print(f"input: {source}: {trades.height:,} trades, {book.height:,} book snapshots")
    bk = normalise(book, BOOK_SCHEMA)
    tr = normalise(trades, TRADE_SCHEMA)
    compute_signals(compute_features(tr.head(2000), bk.head(2000), cfg), cfg)  # load compiled kernels
    # A Dagster step runs the path once in a fresh process: that pass also pays for first-touch memory.
    t0 = time.perf_counter()
    compute_signals(compute_features(trades, book, cfg), cfg, run_id="bench")
    t_cold = time.perf_counter() - t0

    t_ofi = timed(lambda: ofi_run(ofi_initial_state(cfg.ofi), bk, cfg.ofi))
    print(f"OFI      {bk.height / t_ofi:>14,.0f} events/s  ({t_ofi:.3f} s)")
    t_cvd = timed(lambda: cvd_run(cvd_initial_state(cfg.cvd), tr, cfg.cvd, args.symbol))
    print(f"CVD      {tr.height / t_cvd:>14,.0f} events/s  ({t_cvd:.3f} s)")
    feats = compute_features(tr, bk, cfg)
    fin = feats.select(pl.col("event_time_ms").alias("ts_ms"), "z_ofi", "z_cvd",
                       (pl.col("lag_ms") / 1000.0).alias("lag_sec"))
    t_fus = timed(lambda: fusion_run(fusion_initial_state(), fin, cfg.fusion))
    print(f"fusion   {fin.height / t_fus:>14,.0f} events/s  ({t_fus:.3f} s)")
    t_feat = timed(lambda: compute_features(trades, book, cfg))
    t_sig = timed(lambda: compute_signals(feats, cfg, run_id="bench"))
    total = trades.height + book.height
    print(f"features {total / t_feat:>14,.0f} events/s  ({t_feat:.3f} s)")
    print(f"signals  {trades.height / t_sig:>14,.0f} rows/s    ({t_sig:.3f} s)")
    print(f"whole    {total / (t_feat + t_sig):>14,.0f} events/s  ({t_feat + t_sig:.3f} s, trades + book events)")
    print(f"whole, first pass in this process {total / t_cold:>10,.0f} events/s  ({t_cold:.3f} s)")
    sig = compute_signals(feats, cfg, run_id="bench")
    counts = sig.group_by("signal_type").len().sort("signal_type")
    print("signal_type counts:", dict(zip(counts["signal_type"], counts["len"], strict=True)))
    dec = sig.group_by("decision_code").len().sort("len", descending=True)
    print("decision_code counts:", dict(zip(dec["decision_code"], dec["len"], strict=True)))
    print("confirmed:", int(sig["confirm"].sum()), " regimes:", sig["regime"].value_counts().rows())
    print_edge(sig, book)
    # the live path: rows stamped with the arrival counter a harvester would give them
    trades_a, book_a = with_ingest_seq(trades, book, seed=args.seed)
    for mode in ("event_time", "arrival"):
        print_step_latency(trades_a, book_a, resolve_config({"book_join": mode}), args.steps)
    print_arrival_day(trades_a, book_a, resolve_config({"book_join": "arrival"}), cfg, timed)


def print_edge(sig: pl.DataFrame, book: pl.DataFrame) -> None:
    """Does the signal carry information? Direction-signed mid move after each non-neutral signal."""
    mid = book.select(pl.col("event_time_ms").alias("t"),
                      ((pl.col("bid_px_1") + pl.col("ask_px_1")) / 2).alias("mid")).sort("t")
    calls = sig.filter(pl.col("signal_type") != "neutral").select("ts_ms", "score").sort("ts_ms")
    for horizon_s in (10, 60, 300):
        moved = (calls.with_columns((pl.col("ts_ms") + horizon_s * 1000).alias("t_after"))
                 .join_asof(mid.rename({"t": "ts_ms"}), on="ts_ms")
                 .join_asof(mid.rename({"t": "t_after", "mid": "mid_after"}), on="t_after")
                 .select((pl.col("score").sign() * (pl.col("mid_after") / pl.col("mid") - 1) * 1e4).alias("bps")))
        bps = moved.get_column("bps").drop_nulls()
        print(f"edge after {horizon_s:>3} s: {bps.mean():+.3f} bps signed mid move, hit rate {(bps > 0).mean():.1%}"
              f" over {bps.len():,} non-neutral signals")


def arrival_events(trades: pl.DataFrame, book: pl.DataFrame) -> list[tuple[bool, dict[str, Any]]]:
    """(is_trade, row) of every event in ingest_seq order: what a stream consumer would read."""
    t = list(zip([True] * trades.height, trades.to_dicts(), strict=True))
    b = list(zip([False] * book.height, book.to_dicts(), strict=True))
    return sorted(t + b, key=lambda e: e[1]["ingest_seq"])


def _pct(us: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(us, [50, 95, 99])
    return f"p50 {p50:7.1f}  p95 {p95:7.1f}  p99 {p99:8.1f}  max {us.max():8.1f} us"


def _step_latency(events: list[tuple[bool, dict[str, Any]]], cfg: EngineConfig, api: str, sizes: tuple[int, ...],
                  steps: int, warmup: int) -> None:
    state = initial_state(events[0][1]["symbol"], cfg, run_id="bench")
    pos = 0

    def run(k: int) -> tuple[float, int, list[Any]]:
        """One step of the next k events: (seconds, receive time of its last event, created_at of its rows)."""
        nonlocal pos, state
        chunk = events[pos:pos + k]
        pos += k
        tr = [r for is_t, r in chunk if is_t]
        bk = [r for is_t, r in chunk if not is_t]
        if api == "step":  # the frames a caller would build are built outside the timed call
            tf = pl.DataFrame(tr, schema=TRADE_SCHEMA) if tr else None
            bf = pl.DataFrame(bk, schema=BOOK_SCHEMA) if bk else None
            t0 = time.perf_counter()
            state, out = step(state, tf, bf)
            dt = time.perf_counter() - t0
            return dt, chunk[-1][1]["recv_time_ms"], out["created_at"].to_list()
        t0 = time.perf_counter()
        state, rows = step_rows(state, tr, bk)
        dt = time.perf_counter() - t0
        return dt, chunk[-1][1]["recv_time_ms"], [r["created_at"] for r in rows]

    for _ in range(warmup):
        run(1)
    for k in sizes:
        res = [run(k) for _ in range(steps)]
        us = np.asarray([r[0] for r in res]) * 1e6
        print(f"  {api:9s} {k:>2} events/step  {_pct(us)}   ({k / us.mean() * 1e6:>9,.0f} events/s)")
        if k == 1 and api == "step_rows":
            # data time from a trade's receipt to the step that released its row (the book hold-back)
            wait = np.asarray([last - c for _, last, cs in res for c in cs if c is not None], dtype=float)
            print(f"            trade waits for book data (receive-time clock): p50 {np.percentile(wait, 50):.0f}"
                  f"  p99 {np.percentile(wait, 99):.0f}  max {wait.max():.0f} ms")


def print_step_latency(trades: pl.DataFrame, book: pl.DataFrame, cfg: EngineConfig, steps: int) -> None:
    """Wall time of one live step per call, events in arrival order (trades and book mixed as they
    come), for the row-dict form (`step_rows`, the live worker's) and the polars form (`step`)."""
    sizes, warmup = (1, 10, 50), 5_000
    need = warmup + steps * sum(sizes)
    events = arrival_events(trades.filter(pl.col("ingest_seq") < need), book.filter(pl.col("ingest_seq") < need))
    print(f"\n== live step, book_join={cfg.book_join} ({steps:,} timed steps per size after {warmup:,} warm-up events;"
          f" gc on)")
    for api in ("step_rows", "step"):
        _step_latency(events, cfg, api, sizes, steps, warmup)


def print_arrival_day(trades: pl.DataFrame, book: pl.DataFrame, arrival: EngineConfig, event_time: EngineConfig,
                      timed: Callable[..., float], catch_up: int = 300_000) -> None:
    """The whole day through the batch path in each mode; the live step in 1,000-event steps (the
    pace at which a worker catches up after a burst) over the first `catch_up` events."""
    total = trades.height + book.height
    print(f"\n== whole day ({total:,} events, ingest_seq stamped)")
    for cfg in (event_time, arrival):
        t = timed(lambda c=cfg: compute_signals(compute_features(trades, book, c), c), repeat=3)
        print(f"  batch  book_join={cfg.book_join:<10} {total / t:>12,.0f} events/s  ({t:.3f} s)")
    events = arrival_events(trades.filter(pl.col("ingest_seq") < catch_up), book.filter(pl.col("ingest_seq") < catch_up))
    chunks = [events[i:i + 1000] for i in range(0, len(events), 1000)]
    rows = [([r for is_t, r in c if is_t], [r for is_t, r in c if not is_t]) for c in chunks]
    state = initial_state(trades["symbol"][0], arrival)
    t0 = time.perf_counter()
    for tr, bk in rows:
        state, _ = step_rows(state, tr, bk)
    t = time.perf_counter() - t0
    print(f"  live step_rows, arrival, 1,000-event steps (first {len(events):,} events)"
          f" {len(events) / t:>10,.0f} events/s  ({t:.3f} s)")


if __name__ == "__main__":
    main()

"""Seeded synthetic 5-level books and signal frames for tests and benches (no real data needed)."""

from __future__ import annotations

import numpy as np
import polars as pl

from alpha_assets.figures import whole
from executors.book import LEVELS


def synthetic_book(symbol: str = "BTCUSDT", n: int = 2_000, start_ms: int = 1_704_585_600_000,
                   step_ms: int = 100, mid0: float = 43_000.0, tick: float = 0.1, seed: int = 7,
                   vol_ticks: float = 2.0) -> pl.DataFrame:
    """``n`` snapshots ``step_ms`` apart: a random-walk mid on the tick grid, a 1-3 tick spread,
    five levels a tick apart with lognormal sizes."""
    rng = np.random.default_rng(seed)
    mid_ticks = np.round(mid0 / tick) + np.cumsum(np.round(rng.normal(0, vol_ticks, n)))
    spread = rng.integers(1, 4, n)
    bid1 = mid_ticks - spread // 2 - (spread % 2)
    ask1 = bid1 + spread
    cols: dict[str, object] = {
        "symbol": [symbol] * n,
        "event_time_ms": start_ms + np.arange(n, dtype=np.int64) * step_ms,
    }
    cols["recv_time_ms"] = cols["event_time_ms"] + 3  # type: ignore[operator]
    cols["first_update_id"] = np.arange(n, dtype=np.int64) * 10 + 1
    cols["last_update_id"] = np.arange(n, dtype=np.int64) * 10 + 10
    cols["prev_last_update_id"] = np.arange(n, dtype=np.int64) * 10
    for i in range(LEVELS):
        cols[f"bid_px_{i + 1}"] = np.round((bid1 - i) * tick, 10)
        cols[f"ask_px_{i + 1}"] = np.round((ask1 + i) * tick, 10)
        cols[f"bid_qty_{i + 1}"] = np.round(rng.lognormal(-0.5, 0.8, n), 3) + 0.001
        cols[f"ask_qty_{i + 1}"] = np.round(rng.lognormal(-0.5, 0.8, n), 3) + 0.001
    return pl.DataFrame(cols)


def synthetic_signals(book: pl.DataFrame, n: int = 20_000, seed: int = 11, active_frac: float = 0.01,
                      run_id: str = "run-1") -> pl.DataFrame:
    """Signals rows over the book's time span: ~``active_frac`` non-neutral, a few null scores,
    some warm-up and guard rows."""
    rng = np.random.default_rng(seed)
    sym = book["symbol"][0]
    t0, t1 = whole(book["event_time_ms"].min()), whole(book["event_time_ms"].max())
    ts = np.sort(rng.integers(t0, t1 + 1, n))
    kinds = np.array(["neutral", "buy", "strong_buy", "sell", "strong_sell"])
    active = rng.random(n) < active_frac
    st = np.where(active, kinds[rng.integers(1, 5, n)], "neutral")
    score = rng.normal(0, 2, n)
    score_null = rng.random(n) < 0.02
    guard = np.where(rng.random(n) < 0.05, "spread_too_high_12.0bps", "")
    mids = book.select((pl.col("bid_px_1") + pl.col("ask_px_1")) / 2).to_series().to_numpy()
    idx = np.clip(np.searchsorted(book["event_time_ms"].to_numpy(), ts, side="right") - 1, 0, None)
    return pl.DataFrame({
        "run_id": [run_id] * n, "symbol": [sym] * n, "seq": np.arange(n, dtype=np.int64) + 5_000_000,
        "ts_ms": ts.astype(np.int64), "signal_type": st,
        "score": pl.Series(score).set(pl.Series(score_null), None) if score_null.any() else score,
        "consistency": np.round(rng.random(n), 4), "guard_reason": guard,
        "regime": np.where(rng.random(n) < 0.5, "active", "quiet"), "warmup": rng.random(n) < 0.02,
        "price": mids[idx],
    })

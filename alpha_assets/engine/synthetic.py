"""A seeded synthetic market day (numpy) for tests and benchmarks of the engine, used
when `alpha_assets.market.simulator` is not available.

A latent order-flow pressure (AR(1) with bursts) drives both streams: the book's bid/ask
queues grow on the pressured side (OFI) and takers trade in its direction (CVD), so the
engine sees agreeing, disagreeing and quiet stretches, and every signal kind occurs.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl


def synthetic_day(symbol: str = "BTCUSDT", date: str = "2024-01-07", seed: int = 7, *,
                  book_interval_ms: int = 100, trades_per_sec: float = 17.4, hours: float = 24.0,
                  start_price: float = 43_000.0, tick: float = 0.1) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    t0 = int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC).timestamp() * 1000)
    steps = int(hours * 3_600_000 // book_interval_ms)
    # latent pressure: slow AR(1) plus rare bursts
    shocks = rng.normal(0.0, 0.08, steps)
    bursts = (rng.random(steps) < 0.0004) * rng.normal(0.0, 2.5, steps)
    pressure = np.empty(steps)
    p = 0.0
    for i in range(steps):  # plain loop is fine: ~1 s for a day, done once
        p = 0.997 * p + shocks[i] + bursts[i]
        pressure[i] = p
    pressure = np.tanh(pressure)
    # mid price follows the pressure; intraday seasonality: calm 22:00-08:00 UTC, busy otherwise
    # (busy hours carry ~4x the volatility, enough for the active regime)
    hour = (np.arange(steps) * book_interval_ms / 3_600_000.0) % 24.0
    vol_mult = np.where((hour >= 8.0) & (hour < 22.0), 3.0, 0.7)
    mid = start_price * np.exp(np.cumsum(2e-6 * pressure + rng.normal(0.0, 6e-6, steps) * vol_mult))
    mid = np.round(mid / tick) * tick
    spread_ticks = 1 + (rng.random(steps) < 0.05).astype(np.int64) * rng.integers(1, 4, steps)
    bid1 = mid - np.floor(spread_ticks / 2) * tick
    ask1 = bid1 + spread_ticks * tick
    times = t0 + np.arange(steps, dtype=np.int64) * book_interval_ms + rng.integers(0, 5, steps)
    book: dict[str, np.ndarray] = {}
    for k in range(1, 6):
        base = 2.0 + k
        noise_b = rng.normal(0, 0.3, steps)
        noise_a = rng.normal(0, 0.3, steps)
        # queues lean towards the pressured side; OFI sees the change in lean
        book[f"bid_qty_{k}"] = np.maximum(0.001, base * (1.0 + 0.6 * pressure) + noise_b)
        book[f"ask_qty_{k}"] = np.maximum(0.001, base * (1.0 - 0.6 * pressure) + noise_a)
        book[f"bid_px_{k}"] = bid1 - (k - 1) * tick
        book[f"ask_px_{k}"] = ask1 + (k - 1) * tick
    last_uid = 1_000_000 + np.cumsum(rng.integers(1, 30, steps)).astype(np.int64)
    first_uid = np.concatenate(([last_uid[0] - 5], last_uid[:-1] + 1))
    prev_uid = np.concatenate(([last_uid[0] - 6], last_uid[:-1]))
    gaps = rng.random(steps) < 2e-5  # a few update-id gaps: resync
    prev_uid = np.where(gaps, prev_uid - 7, prev_uid)
    book_df = pl.DataFrame({
        "symbol": symbol, "event_time_ms": times, "recv_time_ms": times + rng.integers(5, 60, steps),
        "first_update_id": first_uid, "last_update_id": last_uid, "prev_last_update_id": prev_uid,
        **{f"{s}_{kind}_{k}": book[f"{s}_{kind}_{k}"] for s in ("bid", "ask") for kind in ("px", "qty")
           for k in range(1, 6)},
    })
    # trades: Poisson per book step, more when pressure is strong
    lam = trades_per_sec * book_interval_ms / 1000.0 * (0.6 + 0.8 * np.abs(pressure))
    counts = rng.poisson(lam)
    n = int(counts.sum())
    step_of = np.repeat(np.arange(steps), counts)
    t = t0 + step_of * book_interval_ms + rng.integers(0, book_interval_ms, n)
    order = np.argsort(t, kind="stable")
    t = t[order]
    step_of = step_of[order]
    pb = 1.0 / (1.0 + np.exp(-3.0 * pressure[step_of]))
    buy = rng.random(n) < pb
    qty = np.round(rng.lognormal(-3.0, 1.2, n) * (1.0 + 2.0 * np.abs(pressure[step_of])), 3) + 0.001
    price = np.where(buy, ask1[step_of], bid1[step_of])
    trades_df = pl.DataFrame({
        "symbol": symbol, "event_time_ms": t, "trade_time_ms": t - rng.integers(0, 3, n),
        "recv_time_ms": t + rng.integers(5, 80, n), "agg_trade_id": np.arange(n, dtype=np.int64) + 5_000_000_000,
        "price": price, "qty": qty, "is_buyer_maker": ~buy,
    })
    return {"trades": trades_df, "book": book_df}


def with_ingest_seq(trades: pl.DataFrame, book: pl.DataFrame, seed: int = 0,
                    jitter_ms: float = 3.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both tables with the `ingest_seq` a harvester would stamp: rows arrive at their receive time
    plus a seeded sub-`jitter_ms` network delay, and are numbered in that arrival order (one counter
    for the symbol's trades and book), so the order differs from sorting by receive time alone."""
    rng = np.random.default_rng(seed)
    arrive = np.concatenate((book["recv_time_ms"].to_numpy() + rng.random(book.height) * jitter_ms,
                             trades["recv_time_ms"].to_numpy() + rng.random(trades.height) * jitter_ms))
    seq = np.empty(arrive.shape[0], dtype=np.int64)
    seq[np.argsort(arrive, kind="stable")] = np.arange(arrive.shape[0], dtype=np.int64)
    return (trades.with_columns(pl.Series("ingest_seq", seq[book.height:])),
            book.with_columns(pl.Series("ingest_seq", seq[:book.height])))

"""Seeded synthetic Signals rows for sink tests and benchmarks (numpy, vectorised).

Many rows share one millisecond (bursts of trades), floats have full precision, z values and
guard reasons are sometimes null, and strings include quotes, backslashes and non-ASCII text,
so anything that collapses keys or loses precision on a round trip shows up in parity.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from alpha_assets.sinks.schema import SIGNAL_SCHEMA

T0 = 1_704_585_600_000  # 2024-01-07 00:00 UTC
TYPES = np.array(["neutral", "buy", "strong_buy", "sell", "strong_sell"])
TYPE_P = [0.40, 0.2, 0.1, 0.2, 0.1]
GUARDS = np.array(["", "spread_too_wide_12.5bps", "lag_exceeds_0.8s", 'weird "quoted" \\ reason', "冷启动"])


def synthetic_signals(n: int, *, run_id: str = "run-1", symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
                      seed: int = 7, t0: int = T0, same_ms_burst: int = 40) -> pl.DataFrame:
    """`n` rows, per symbol in event order; bursts of up to `same_ms_burst` rows share a ts_ms."""
    rng = np.random.default_rng(seed)
    sym_idx = rng.integers(0, len(symbols), n)
    # event time: bursts sharing one ms, then gaps; ~17 trades/s like the engine's synthetic day
    new_ms = rng.random(n) < (1.0 / max(1, same_ms_burst // 2))
    new_ms[0] = True
    gaps = np.where(new_ms, rng.integers(1, 120, n), 0)
    ts = t0 + np.cumsum(gaps)
    seq = np.empty(n, dtype=np.int64)
    for k in range(len(symbols)):  # agg_trade_id: increasing per symbol, with holes
        m = sym_idx == k
        seq[m] = 5_000_000 + np.cumsum(rng.integers(1, 3, int(m.sum())))
    types = TYPES[rng.choice(len(TYPES), n, p=TYPE_P)]
    score = rng.normal(0, 1.3, n)
    z_ofi = rng.normal(0, 1, n)
    z_cvd = rng.normal(0, 1, n) * 1e-3 + rng.normal(0, 1, n)
    guard_idx = rng.choice(len(GUARDS), n, p=[0.7, 0.1, 0.1, 0.05, 0.05])
    df = pl.DataFrame({
        "run_id": np.full(n, run_id), "symbol": np.array(symbols)[sym_idx], "seq": seq, "ts_ms": ts,
        "signal_type": types, "score": score, "consistency": rng.random(n),
        "z_ofi": z_ofi, "z_cvd": z_cvd, "confirm": rng.random(n) < 0.3, "gating": rng.random(n) < 0.2,
        "decision_code": np.where(rng.random(n) < 0.5, "OK", "GATED"), "guard_reason": GUARDS[guard_idx],
        "regime": np.where(rng.random(n) < 0.6, "active", "quiet"),
        "div_type": np.where(rng.random(n) < 0.9, "none", "bull_div"), "warmup": rng.random(n) < 0.01,
        "price": np.round(43_000 + np.cumsum(rng.normal(0, 0.5, n)), 1) + 0.0,
        "spread_bps": rng.random(n) * 3, "created_at": ts + rng.integers(5, 80, n),
    })
    df = df.with_columns(
        pl.when(pl.col("guard_reason") == "").then(None).otherwise(pl.col("guard_reason")).alias("guard_reason"),
        pl.when(pl.col("warmup")).then(None).otherwise(pl.col("z_ofi")).alias("z_ofi"),
        pl.when(pl.col("seq") % 97 == 0).then(None).otherwise(pl.col("z_cvd")).alias("z_cvd"),
    )
    return df.select([pl.col(c).cast(t) for c, t in SIGNAL_SCHEMA.items()])

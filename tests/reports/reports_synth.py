"""Synthetic signals/orders/mids with the interface columns (docs/interfaces.md), seeded."""

from __future__ import annotations

import bisect
import math

import numpy as np
import polars as pl

T0 = 1_704_585_600_000  # 2024-01-07 00:00:00 UTC
TYPES = ["neutral", "buy", "strong_buy", "sell", "strong_sell"]
GUARDS = ["", "spread_bps", "lag_sec,spread_bps", "activity", "none"]


def make_signals(symbol: str, n: int, seed: int, *, minutes: int = 20, start_ms: int = T0,
                 gap: tuple[int, int] | None = None) -> pl.DataFrame:
    """``n`` evaluations spread over ``minutes``; ``gap`` = (first, last) minute left empty."""
    rng = np.random.default_rng(seed)
    ts = np.sort(start_ms + rng.integers(0, minutes * 60_000, n))
    if gap is not None:
        minute = (ts - start_ms) // 60_000
        ts = ts[(minute < gap[0]) | (minute > gap[1])]
    n = len(ts)
    types = rng.choice(TYPES, n, p=[0.45, 0.2, 0.07, 0.2, 0.08])
    guards = rng.choice(GUARDS, n, p=[0.5, 0.2, 0.1, 0.1, 0.1]).tolist()
    price = 100.0 + np.cumsum(rng.normal(0, 0.05, n))
    return pl.DataFrame(
        {
            "run_id": ["run-1"] * n,
            "symbol": [symbol] * n,
            "seq": np.arange(n, dtype=np.int64),
            "ts_ms": ts.astype(np.int64),
            "signal_type": types,
            "score": rng.normal(0, 1, n),
            "consistency": rng.random(n),
            "confirm": rng.random(n) < 0.3,
            "gating": rng.random(n) < 0.1,
            "decision_code": ["OK"] * n,
            "guard_reason": [None if g == "" else g for g in guards],
            "regime": ["normal"] * n,
            "warmup": np.arange(n) < 25,
            "price": price,
            "spread_bps": rng.random(n),
            "created_at": (ts + 5).astype(np.int64),
        }
    )


def make_orders(signals: pl.DataFrame, seed: int, *, reject_p: float = 0.1, accept_p: float = 0.05,
                qty: float = 1.0) -> pl.DataFrame:
    """One order per directional signal; fills at the signal price."""
    rng = np.random.default_rng(seed)
    d = signals.filter(pl.col("signal_type") != "neutral")
    n = d.height
    u = rng.random(n)
    status = np.where(u < reject_p, "rejected", np.where(u < reject_p + accept_p, "accepted", "filled"))
    reasons = rng.choice(["risk_max_position", "min_notional", ""], n)
    side = np.where(d["signal_type"].is_in(["buy", "strong_buy"]).to_numpy(), "BUY", "SELL")
    px = d["price"].to_numpy()
    return pl.DataFrame(
        {
            "run_id": d["run_id"],
            "symbol": d["symbol"],
            "signal_seq": d["seq"],
            "ts_ms": d["ts_ms"],
            "client_order_id": [f"{s}-{q}" for s, q in zip(d["symbol"], d["seq"], strict=True)],
            "side": side,
            "qty": np.full(n, qty),
            "px_intent": px,
            "px_sent": px,
            "px_fill": [float(p) if s == "filled" else None for p, s in zip(px, status, strict=True)],
            "slippage_bps": [float(x) if s == "filled" else None
                             for x, s in zip(rng.normal(0.5, 1, n), status, strict=True)],
            "status": status,
            "reason": [r if s == "rejected" else None for r, s in zip(reasons, status, strict=True)],
            "signal_type": d["signal_type"],
        },
        schema_overrides={"px_fill": pl.Float64, "slippage_bps": pl.Float64, "reason": pl.Utf8},
    )


def make_mids(signals: pl.DataFrame, seed: int) -> pl.DataFrame:
    """1-second mids: a random walk per symbol over the signals' span."""
    rng = np.random.default_rng(seed)
    frames = []
    for sym in sorted(signals["symbol"].unique().to_list()):
        s = signals.filter(pl.col("symbol") == sym)
        lo, hi = int(s["ts_ms"].min()) // 1000 * 1000, int(s["ts_ms"].max()) // 1000 * 1000
        ts = np.arange(lo, hi + 1000, 1000, dtype=np.int64)
        mid = 100.0 + np.cumsum(rng.normal(0, 0.03, len(ts)))
        frames.append(pl.DataFrame({"symbol": [sym] * len(ts), "ts_ms": ts, "mid": mid}))
    return pl.concat(frames)


def reference_pnl(orders: pl.DataFrame, mids: pl.DataFrame, fee_bps: float) -> dict:
    """Second-by-second loop, written without polars joins: equity, per-minute PnL, Sharpe, MaxDD."""
    fills = sorted(
        (r for r in orders.iter_rows(named=True) if r["status"] == "filled" and r["px_fill"] is not None),
        key=lambda r: (r["ts_ms"], r["client_order_id"]),
    )
    if not fills:
        return {"net_pnl": 0.0, "sharpe": None, "max_drawdown": 0.0, "n_fills": 0}
    marks: dict[str, tuple[list[int], list[float]]] = {}
    for r in mids.sort("ts_ms").iter_rows(named=True):
        t, m = marks.setdefault(r["symbol"], ([], []))
        t.append(r["ts_ms"])
        m.append(r["mid"])
    symbols = sorted({f["symbol"] for f in fills})
    start = fills[0]["ts_ms"] // 1000 * 1000
    end = max(max(f["ts_ms"] for f in fills), max(max(marks[s][0]) for s in symbols if s in marks))
    end = end // 1000 * 1000
    pos = dict.fromkeys(symbols, 0.0)
    cash = dict.fromkeys(symbols, 0.0)
    last_px: dict[str, float] = {}
    i = 0
    equity_by_sec: list[tuple[int, float]] = []
    for sec in range(start, end + 1000, 1000):
        while i < len(fills) and fills[i]["ts_ms"] <= sec + 999:
            f = fills[i]
            q = f["qty"] if f["side"] == "BUY" else -f["qty"]
            pos[f["symbol"]] += q
            cash[f["symbol"]] -= q * f["px_fill"] + abs(q) * f["px_fill"] * fee_bps / 1e4
            last_px[f["symbol"]] = f["px_fill"]
            i += 1
        total = 0.0
        for s in symbols:
            ts, ms = marks.get(s, ([], []))
            k = bisect.bisect_right(ts, sec + 999) - 1
            mark = ms[k] if k >= 0 else last_px.get(s, 0.0)
            total += cash[s] + pos[s] * mark
        equity_by_sec.append((sec, total))
    peak, mdd = 0.0, 0.0
    for _, e in equity_by_sec:
        peak = max(peak, e)
        mdd = max(mdd, peak - e)
    minute_end: dict[int, float] = {}
    for sec, e in equity_by_sec:
        minute_end[sec // 60_000] = e
    eq = [minute_end[k] for k in sorted(minute_end)]
    pnl = np.diff(np.array([0.0] + eq))
    sharpe = float(pnl.mean() / pnl.std(ddof=1) * math.sqrt(525_600)) if len(pnl) > 1 and pnl.std(ddof=1) > 0 else None
    return {"net_pnl": equity_by_sec[-1][1], "sharpe": sharpe, "max_drawdown": mdd, "n_fills": len(fills)}

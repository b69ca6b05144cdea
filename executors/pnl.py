"""PnL of an Orders frame marked to the book's mid, per event, and the figures reports quote.

Conventions:

* Only ``status == "filled"`` rows with a ``px_fill`` trade. A fill is booked at ``ack_ts_ms``
  (when it happened: a resting maker order fills well after its signal), ``ts_ms`` when absent.
* Average-cost book per symbol: closing quantity realises ``(px_fill - avg_px)`` per unit (sign of
  the position); a flip opens the remainder at the fill price. Fees are ``fee_bps`` of each
  filled notional and are kept apart from the realised PnL so both are visible.
* ``unrealised = position * (mid - avg_px)``; ``net = realised - fees + unrealised`` (after costs).
* Events: every fill, and marks from the book (the last mid of each ``mark_every_ms`` bucket,
  every snapshot when 0) from the symbol's first fill on. At equal times a mark comes before a
  fill. ``net_total`` is the sum over symbols of each symbol's latest ``net``.
* Sharpe: per-minute PnL (``net_total`` at each minute end, flat minutes included, from the first
  to the last event minute) -> ``mean / std(ddof=1) * sqrt(525_600)``; None under
  ``min_minutes`` minutes or when it does not vary. Sharpe does not depend on capital, so per-minute
  PnL stands in for returns. Max drawdown: ``max(peak - net_total)`` with ``peak`` the running
  maximum of ``max(0, net_total)``, in quote currency.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

MINUTES_PER_YEAR = 525_600
MINUTE_MS = 60_000
DELIBERATE_PREFIXES = ("pre_deny:", "throttle:", "risk:", "paper_sampled_out")

CURVE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(), "ts_ms": pl.Int64(), "event": pl.Utf8(), "client_order_id": pl.Utf8(),
    "fill_qty": pl.Float64(), "px_fill": pl.Float64(), "mid": pl.Float64(), "position": pl.Float64(),
    "avg_px": pl.Float64(), "realised": pl.Float64(), "fees": pl.Float64(), "unrealised": pl.Float64(),
    "net": pl.Float64(), "net_total": pl.Float64(),
}


class PnLCurveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fee_bps: float = Field(4.0, ge=0, le=100, description="fee on each filled notional, bps")
    mark_every_ms: int = Field(1_000, ge=0, le=3_600_000, description="mark grid; 0 = every book snapshot")
    min_minutes: int = Field(10, ge=2, description="fewer minutes -> Sharpe is None")


def _fills(orders: pl.DataFrame) -> pl.DataFrame:
    need = ("symbol", "ts_ms", "side", "qty", "px_fill", "status", "client_order_id")
    missing = [c for c in need if c not in orders.columns]
    if missing:
        raise ValueError(f"orders frame lacks columns {missing}")
    t = pl.col("ack_ts_ms").fill_null(pl.col("ts_ms")) if "ack_ts_ms" in orders.columns else pl.col("ts_ms")
    f = orders.filter(pl.col("status") == "filled", pl.col("px_fill").is_not_null(), pl.col("qty") > 0)
    bad = f.filter(~pl.col("side").is_in(["BUY", "SELL"]) | ~(pl.col("px_fill") > 0))
    if bad.height:
        raise ValueError(f"{bad.height} filled orders with a bad side or px_fill (e.g. {bad.row(0, named=True)})")
    return (f.with_columns(t.cast(pl.Int64).alias("_t"))
            .select("symbol", pl.col("_t").alias("ts_ms"), "client_order_id",
                    pl.when(pl.col("side") == "BUY").then(pl.col("qty")).otherwise(-pl.col("qty")).alias("fill_qty"),
                    "px_fill")
            .sort("symbol", "ts_ms", "client_order_id"))


def _book_state(fills: pl.DataFrame, fee_bps: float) -> pl.DataFrame:
    """Sequential average-cost accounting per symbol (fills are few; a loop is clear and exact)."""
    pos: dict[str, float] = {}
    avg: dict[str, float] = {}
    real: dict[str, float] = {}
    fees: dict[str, float] = {}
    out: dict[str, list[float]] = {"position": [], "avg_px": [], "realised": [], "fees": []}
    for sym, q, px in zip(fills["symbol"].to_list(), fills["fill_qty"].to_list(), fills["px_fill"].to_list(),
                          strict=True):
        p, a = pos.get(sym, 0.0), avg.get(sym, 0.0)
        r = real.get(sym, 0.0)
        if p != 0.0 and (p > 0) != (q > 0):  # closing (part of) the position
            closed = min(abs(q), abs(p))
            r += closed * (px - a) * (1.0 if p > 0 else -1.0)
            new = p + q
            if abs(q) > abs(p):
                a = px  # flipped: the remainder opens at this price
            elif abs(new) < 1e-12:
                new, a = 0.0, 0.0
        else:
            new = p + q
            a = (a * abs(p) + px * abs(q)) / abs(new)
        pos[sym], avg[sym], real[sym] = new, a, r
        fees[sym] = fees.get(sym, 0.0) + abs(q) * px * fee_bps / 1e4
        for k, v in (("position", new), ("avg_px", a), ("realised", r), ("fees", fees[sym])):
            out[k].append(v)
    return fills.with_columns(*(pl.Series(k, v, dtype=pl.Float64) for k, v in out.items()))


def _marks(book: pl.DataFrame, first_fill: pl.DataFrame, every_ms: int) -> pl.DataFrame:
    need = ("symbol", "event_time_ms", "bid_px_1", "ask_px_1")
    missing = [c for c in need if c not in book.columns]
    if missing:
        raise ValueError(f"book frame lacks columns {missing}")
    m = (book.select("symbol", pl.col("event_time_ms").cast(pl.Int64).alias("ts_ms"),
                     ((pl.col("bid_px_1") + pl.col("ask_px_1")) / 2).alias("mid"))
         .filter(pl.col("mid").is_finite(), pl.col("mid") > 0)
         .join(first_fill, on="symbol")
         .filter(pl.col("ts_ms") >= pl.col("_first"))
         .drop("_first")
         .sort("symbol", "ts_ms"))
    if every_ms > 0:  # the last mid of each bucket, stamped at the snapshot it came from
        m = (m.with_columns((pl.col("ts_ms") // every_ms).alias("_b"))
             .group_by("symbol", "_b", maintain_order=True).last().drop("_b"))
    return m


def pnl_curve(orders: pl.DataFrame, book: pl.DataFrame, cfg: PnLCurveConfig | dict[str, Any] | None = None,
              ) -> pl.DataFrame:
    """Per-event position, mark-to-mid, realised/unrealised and net PnL after fees (CURVE_SCHEMA)."""
    c = cfg if isinstance(cfg, PnLCurveConfig) else PnLCurveConfig(**(cfg or {}))
    fills = _fills(orders)
    if fills.height == 0:
        return pl.DataFrame(schema=CURVE_SCHEMA)
    fills = _book_state(fills, c.fee_bps)
    first = fills.group_by("symbol").agg(pl.col("ts_ms").min().alias("_first"))
    marks = _marks(book, first, c.mark_every_ms)
    mid_src = marks if c.mark_every_ms == 0 else _marks(book, first, 0)
    # a fill's own mark: the mid at or before it (its fill price before any mid is known)
    fills = (fills.sort("symbol", "ts_ms")
             .join_asof(mid_src.rename({"mid": "_mid"}), on="ts_ms", by="symbol", strategy="backward",
                        check_sortedness=False)
             .with_columns(pl.col("_mid").fill_null(pl.col("px_fill")).alias("mid")).drop("_mid"))
    f_rows = fills.with_columns(pl.lit("fill").alias("event"), pl.lit(1).alias("_o"))
    m_rows = marks.with_columns(pl.lit("mark").alias("event"), pl.lit(0).alias("_o"),
                                pl.lit(None, pl.Utf8).alias("client_order_id"),
                                *(pl.lit(None, pl.Float64).alias(k) for k in
                                  ("fill_qty", "px_fill", "position", "avg_px", "realised", "fees")))
    cols = ["symbol", "ts_ms", "_o", "event", "client_order_id", "fill_qty", "px_fill", "mid", "position",
            "avg_px", "realised", "fees"]
    ev = (pl.concat([f_rows.select(cols), m_rows.select(cols)], how="vertical_relaxed")
          .with_row_index("_k")
          .sort("symbol", "ts_ms", "_o", "_k")
          .with_columns(pl.col(k).forward_fill().over("symbol") for k in ("position", "avg_px", "realised", "fees"))
          .with_columns(pl.col(k).fill_null(0.0) for k in ("position", "avg_px", "realised", "fees"))
          .with_columns((pl.col("position") * (pl.col("mid") - pl.col("avg_px"))).alias("unrealised"))
          .with_columns((pl.col("realised") - pl.col("fees") + pl.col("unrealised")).alias("net")))
    # total over symbols: each symbol's change in net, accumulated in time order
    ev = (ev.with_columns(pl.col("net").diff().over("symbol").fill_null(pl.col("net")).alias("_d"))
          .sort("ts_ms", "_o", "symbol", "_k")
          .with_columns(pl.col("_d").cum_sum().alias("net_total")))
    return ev.select(list(CURVE_SCHEMA)).cast(CURVE_SCHEMA)  # type: ignore[arg-type]


def minute_pnl(curve: pl.DataFrame) -> pl.Series:
    """PnL of every minute from the first to the last event minute (flat minutes are 0)."""
    if curve.height == 0:
        return pl.Series("pnl", [], dtype=pl.Float64)
    ends = (curve.with_columns((pl.col("ts_ms") // MINUTE_MS).alias("m"))
            .group_by("m", maintain_order=True).agg(pl.col("net_total").last()))
    lo, hi = int(ends["m"].min()), int(ends["m"].max())
    grid = pl.DataFrame({"m": pl.int_range(lo, hi + 1, eager=True, dtype=ends["m"].dtype)})
    eq = grid.join(ends, on="m", how="left").with_columns(pl.col("net_total").forward_fill())
    return eq["net_total"].diff().fill_null(eq["net_total"][0]).alias("pnl")


def summary_stats(orders: pl.DataFrame, curve: pl.DataFrame, min_minutes: int = 10) -> dict[str, Any]:
    """Net PnL, fees, Sharpe of per-minute PnL, max drawdown, fills, reject rates."""
    n = orders.height
    rej = orders.filter(pl.col("status") == "rejected")
    deliberate = rej.filter(pl.col("reason").str.starts_with(DELIBERATE_PREFIXES[0])
                            | pl.col("reason").str.starts_with(DELIBERATE_PREFIXES[1])
                            | pl.col("reason").str.starts_with(DELIBERATE_PREFIXES[2])
                            | (pl.col("reason") == DELIBERATE_PREFIXES[3])).height
    filled = orders.filter(pl.col("status") == "filled", pl.col("px_fill").is_not_null())
    out: dict[str, Any] = {
        "orders": n, "filled": filled.height, "rejected": rej.height,
        "reject_rate": rej.height / n if n else None,
        "failure_rate": (rej.height - deliberate) / n if n else None,  # not counting gates and sampling
        "turnover": float((filled["qty"] * filled["px_fill"]).sum()) if filled.height else 0.0,
        "net_pnl": 0.0, "realised": 0.0, "fees": 0.0, "sharpe": None, "minutes": 0, "max_drawdown": 0.0,
    }
    if curve.height == 0:
        return out
    last = curve.group_by("symbol").agg(pl.col("realised").last(), pl.col("fees").last())
    out["realised"] = float(last["realised"].sum())
    out["fees"] = float(last["fees"].sum())
    net = curve["net_total"]
    out["net_pnl"] = float(net[-1])
    peak = net.clip(lower_bound=0.0).cum_max()
    out["max_drawdown"] = float((peak - net).max() or 0.0)
    pnl = minute_pnl(curve)
    out["minutes"] = pnl.len()
    if pnl.len() >= min_minutes:
        sd = pnl.std(ddof=1)
        if sd is not None and sd > 0 and math.isfinite(sd):
            out["sharpe"] = float(pnl.mean()) / float(sd) * math.sqrt(MINUTES_PER_YEAR)  # type: ignore[arg-type]
    return out

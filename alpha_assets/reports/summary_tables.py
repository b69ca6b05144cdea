"""The tables behind the daily summary: counts per minute, guard reasons, execution figures, and
how a roll-up over symbols recombines the execution and PnL blocks (by re-aggregating, never by
averaging ratios). Definitions: alpha_assets.reports.summary."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from alpha_assets.figures import num, whole
from alpha_assets.reports.pnl import MINUTE_MS, curve_figures
from alpha_assets.signal_contract import DIRECTIONAL_TYPES, SIGNAL_TYPES

NO_GUARD = ("", "none", "ok")
COUNT_COLUMNS = ("total", *SIGNAL_TYPES, "confirm")

PER_MINUTE_SCHEMA = {"ts_ms": pl.Int64, **{c: pl.Int64 for c in COUNT_COLUMNS}}


def per_minute_table(signals: pl.DataFrame) -> pl.DataFrame:
    """Counts per event-time minute (every minute of the window, empty ones as zeros)."""
    if signals.is_empty():
        return complete_minutes(pl.DataFrame(schema=PER_MINUTE_SCHEMA))
    counts = (
        signals.with_columns(((pl.col("ts_ms") // MINUTE_MS) * MINUTE_MS).alias("ts_ms"))
        .group_by("ts_ms")
        .agg(
            pl.len().cast(pl.Int64).alias("total"),
            *[(pl.col("signal_type") == t).sum().cast(pl.Int64).alias(t) for t in SIGNAL_TYPES],
            pl.col("confirm").fill_null(False).sum().cast(pl.Int64).alias("confirm"),
        )
    )
    return complete_minutes(counts)


def complete_minutes(counts: pl.DataFrame) -> pl.DataFrame:
    counts = counts.select("ts_ms", *COUNT_COLUMNS).cast(PER_MINUTE_SCHEMA)  # type: ignore[arg-type]
    if counts.is_empty():
        full = counts
    else:
        lo, hi = whole(counts["ts_ms"].min()), whole(counts["ts_ms"].max())
        grid = pl.DataFrame({"ts_ms": list(range(lo, hi + MINUTE_MS, MINUTE_MS))}, schema={"ts_ms": pl.Int64})
        full = grid.join(counts, on="ts_ms", how="left").fill_null(0)
    directional = pl.sum_horizontal(*DIRECTIONAL_TYPES)
    strong = pl.col("strong_buy") + pl.col("strong_sell")
    return full.sort("ts_ms").with_columns(
        directional.alias("directional"),
        strong.alias("strong"),
        pl.when(directional > 0).then(strong / directional).alias("strong_ratio"),
        pl.when(directional > 0).then((pl.col("buy") + pl.col("strong_buy")) / directional).alias("buy_ratio"),
    )


def guard_histogram(signals: pl.DataFrame) -> tuple[dict[str, int], int]:
    """(reason -> rows carrying it, rows carrying any reason), most frequent first."""
    if "guard_reason" not in signals.columns or signals.is_empty():
        return {}, 0
    reasons = (
        signals.select(pl.col("guard_reason").cast(pl.Utf8).fill_null("").str.replace_all(";", ",").str.split(",").alias("r"))
        .with_row_index("row")
        .explode("r")
        .with_columns(pl.col("r").str.strip_chars())
        .filter(~pl.col("r").str.to_lowercase().is_in(NO_GUARD))
        .unique(["row", "r"])
    )
    hist = reasons.group_by("r").len().sort(["len", "r"], descending=[True, False])
    return {r: int(n) for r, n in hist.iter_rows()}, int(reasons["row"].n_unique())


def execution_figures(orders: pl.DataFrame) -> dict[str, Any]:
    """Order, fill and reject counts, reject reasons and fill quality."""
    n = orders.height
    status = orders["status"] if n else pl.Series([], dtype=pl.Utf8)
    filled = orders.filter(pl.col("status") == "filled") if n else orders
    rejected = orders.filter(pl.col("status") == "rejected") if n else orders
    reasons = (
        rejected.select(pl.col("reason").cast(pl.Utf8).fill_null("").alias("reason"))
        .with_columns(pl.when(pl.col("reason") == "").then(pl.lit("(unspecified)")).otherwise("reason").alias("reason"))
        .group_by("reason")
        .len()
        .sort(["len", "reason"], descending=[True, False])
    )
    slip = filled["slippage_bps"].drop_nulls() if "slippage_bps" in filled.columns else pl.Series([], dtype=pl.Float64)
    return {
        "orders": n,
        "fills": int((status == "filled").sum()),
        "accepted": int((status == "accepted").sum()),
        "rejects": int((status == "rejected").sum()),
        "buy_orders": int((orders["side"] == "BUY").sum()) if n else 0,
        "sell_orders": int((orders["side"] == "SELL").sum()) if n else 0,
        "rejects_by_reason": {r: int(c) for r, c in reasons.iter_rows()},
        "filled_qty": float(filled["qty"].sum()) if filled.height else 0.0,
        "slippage_n": slip.len(),
        "slippage_bps_mean": num(slip.mean()) if slip.len() else None,
    }


def rollup_execution(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: sum(b[k] for b in blocks) for k in
                           ("orders", "fills", "accepted", "rejects", "buy_orders", "sell_orders", "slippage_n")}
    out["filled_qty"] = sum(b["filled_qty"] for b in blocks)
    reasons: dict[str, int] = {}
    for b in blocks:
        for r, c in b["rejects_by_reason"].items():
            reasons[r] = reasons.get(r, 0) + c
    out["rejects_by_reason"] = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    # mean * n is the sum of slippages: this recomputes the mean over all fills exactly.
    slip_sum = sum(b["slippage_bps_mean"] * b["slippage_n"] for b in blocks if b["slippage_n"])
    out["slippage_bps_mean"] = slip_sum / out["slippage_n"] if out["slippage_n"] else None
    return out


def rollup_pnl(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    curves = [pl.DataFrame(b["curve"], schema={"ts_ms": pl.Int64, "equity": pl.Float64, "pnl": pl.Float64})
              for b in blocks]
    curves = [c.with_columns(pl.lit(i).alias("part")) for i, c in enumerate(curves) if not c.is_empty()]
    caps = [b["capital"] for b in blocks if b["capital"]]
    capital = float(sum(caps)) if caps else None
    if curves:
        allc = pl.concat(curves)
        lo, hi = whole(allc["ts_ms"].min()), whole(allc["ts_ms"].max())
        grid = pl.DataFrame({"ts_ms": list(range(lo, hi + MINUTE_MS, MINUTE_MS))}, schema={"ts_ms": pl.Int64})
        parts = pl.DataFrame({"part": sorted(allc["part"].unique().to_list())}, schema={"part": pl.Int32})
        summed = (
            grid.join(parts, how="cross")
            .join(allc.select("ts_ms", pl.col("part").cast(pl.Int32), "equity"), on=["ts_ms", "part"], how="left")
            .sort("part", "ts_ms")
            .with_columns(pl.col("equity").forward_fill().over("part").fill_null(0.0))
            .group_by("ts_ms")
            .agg(pl.col("equity").sum())
            .sort("ts_ms")
        )
    else:
        summed = pl.DataFrame(schema={"ts_ms": pl.Int64, "equity": pl.Float64})
    figures = curve_figures(summed, capital, blocks[0].get("min_sharpe_minutes", 10))
    fees = sum(b["fees"] for b in blocks)
    by_symbol: dict[str, Any] = {}
    for b in blocks:
        by_symbol.update(b["by_symbol"])
    minute = summed.with_columns(pl.col("equity").diff().fill_null(pl.col("equity")).alias("pnl"))
    return {
        **figures,
        "n_fills": sum(b["n_fills"] for b in blocks),
        "fees": fees,
        "turnover": sum(b["turnover"] for b in blocks),
        "gross_pnl": figures["net_pnl"] + fees,
        "fee_bps": blocks[0]["fee_bps"],
        "mark_source": ",".join(sorted({b["mark_source"] for b in blocks})),
        "by_symbol": by_symbol,
        "curve": records(minute),
        "max_drawdown_resolution": "1min",
    }


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: clean(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v

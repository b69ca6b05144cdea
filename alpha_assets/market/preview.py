"""1-second preview bars from trades and book snapshots."""

from __future__ import annotations

import polars as pl

SECOND_MS = 1_000

PREVIEW_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(), "ts_ms": pl.Int64(), "open": pl.Float64(), "high": pl.Float64(), "low": pl.Float64(),
    "close": pl.Float64(), "volume": pl.Float64(), "buy_volume": pl.Float64(), "sell_volume": pl.Float64(),
    "trade_count": pl.Int64(), "vwap": pl.Float64(), "best_bid": pl.Float64(), "best_ask": pl.Float64(),
    "bid_qty_1": pl.Float64(), "ask_qty_1": pl.Float64(), "spread_bps": pl.Float64(), "l1_imbalance": pl.Float64(),
}


def _in_order(frame: pl.DataFrame, id_col: str) -> bool:
    """One symbol, sorted by (event_time_ms, id): the sort would not move a row."""
    if frame.height < 2:
        return True
    if frame.get_column("symbol").n_unique() != 1:
        return False
    t, i = pl.col("event_time_ms"), pl.col(id_col)
    return bool(frame.select(((t.diff() > 0) | ((t.diff() == 0) & (i.diff() >= 0))).slice(1).all()).item())


def _ordered(frame: pl.DataFrame, id_col: str) -> pl.DataFrame:
    return frame if _in_order(frame, id_col) else frame.sort("symbol", "event_time_ms", id_col)


def preview_bars(trades: pl.DataFrame, book: pl.DataFrame) -> pl.DataFrame:
    """One row per symbol and second that has a trade or a book snapshot. Trade fields come from
    the second's trades (buy volume = taker buys, i.e. not is_buyer_maker); book fields from the
    last snapshot of the second; seconds without trades have null OHLC and zero volume."""
    sec = (pl.col("event_time_ms") // SECOND_MS * SECOND_MS).alias("ts_ms")
    bars = (
        _ordered(trades, "agg_trade_id")
        .group_by("symbol", sec, maintain_order=True)
        .agg(
            pl.col("price").first().alias("open"), pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"), pl.col("price").last().alias("close"),
            pl.col("qty").sum().alias("volume"),
            pl.col("qty").filter(~pl.col("is_buyer_maker")).sum().alias("buy_volume"),
            pl.col("qty").filter(pl.col("is_buyer_maker")).sum().alias("sell_volume"),
            pl.len().cast(pl.Int64).alias("trade_count"),
            ((pl.col("price") * pl.col("qty")).sum() / pl.col("qty").sum()).alias("vwap"),
        )
    )
    tops = (
        _ordered(book, "last_update_id")
        .group_by("symbol", sec, maintain_order=True)
        .agg(pl.col("bid_px_1").last().alias("best_bid"), pl.col("ask_px_1").last().alias("best_ask"),
             pl.col("bid_qty_1").last(), pl.col("ask_qty_1").last())
    )
    mid = (pl.col("best_bid") + pl.col("best_ask")) / 2
    depth = pl.col("bid_qty_1") + pl.col("ask_qty_1")
    out = (
        bars.join(tops, on=["symbol", "ts_ms"], how="full", coalesce=True)
        .with_columns(
            pl.col("volume", "buy_volume", "sell_volume").fill_null(0.0),
            pl.col("trade_count").fill_null(0),
            ((pl.col("best_ask") - pl.col("best_bid")) / mid * 1e4).alias("spread_bps"),
            pl.when(depth > 0).then((pl.col("bid_qty_1") - pl.col("ask_qty_1")) / depth).alias("l1_imbalance"),
        )
        .sort("symbol", "ts_ms")
    )
    return out.select([pl.col(c).cast(t) for c, t in PREVIEW_SCHEMA.items()])

"""PnL on real Binance USD-M BTCUSDT data (2024-01-07): real trades as fills, real bookTicker mids."""

from __future__ import annotations

import polars as pl
import pytest
from reports_synth import reference_pnl

from alpha_assets.paths import shared_data_dir
from alpha_assets.reports.pnl import PnLConfig, mids_from_book, pnl_from_orders

DATA = shared_data_dir() / "binance_um_20240107"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared real data not present")


@pytest.fixture(scope="module")
def real() -> dict[str, pl.DataFrame]:
    ticker = pl.read_parquet(DATA / "BTCUSDT-2024-01-07-h00m00-10.parquet")
    book = ticker.select(pl.lit("BTCUSDT").alias("symbol"), (pl.col("ts_ns") // 1_000_000).alias("event_time_ms"),
                         pl.col("bid_px").alias("bid_px_1"), pl.col("ask_px").alias("ask_px_1"))
    trades = pl.read_parquet(DATA / "BTCUSDT-2024-01-07-h00.parquet")
    end_ms = int(book["event_time_ms"].max())  # type: ignore[arg-type]
    # Every 37th taker trade of the first 10 minutes becomes a filled order in the taker's direction.
    fills = (
        trades.with_columns((pl.col("ts_ns") // 1_000_000).alias("ts_ms"))
        .filter(pl.col("ts_ms") <= end_ms)
        .gather_every(37)
        .select(
            pl.lit("BTCUSDT").alias("symbol"),
            pl.col("agg_trade_id").cast(pl.Utf8).alias("client_order_id"),
            "ts_ms",
            pl.when(pl.col("side") > 0).then(pl.lit("BUY")).otherwise(pl.lit("SELL")).alias("side"),
            pl.lit(0.01).alias("qty"),
            pl.col("price").alias("px_fill"),
            pl.lit("filled").alias("status"),
            pl.lit(None, pl.Utf8).alias("reason"),
        )
    )
    return {"book": book, "orders": fills}


def test_mids_are_one_per_second_inside_the_spread(real: dict[str, pl.DataFrame]) -> None:
    book = real["book"]
    mids = mids_from_book(book)
    assert mids["ts_ms"].is_unique().all() and (mids["ts_ms"] % 1000 == 0).all()
    assert mids.height == book.select(pl.col("event_time_ms") // 1000).n_unique()
    last = book.group_by(pl.col("event_time_ms") // 1000 * 1000).last().sort("event_time_ms")
    assert ((mids["mid"] > last["bid_px_1"]) & (mids["mid"] < last["ask_px_1"])).all()


def test_real_pnl_matches_reference_loop(real: dict[str, pl.DataFrame]) -> None:
    orders, mids = real["orders"], mids_from_book(real["book"])
    assert orders.height > 50
    for fee in (0.0, 5.0):
        res = pnl_from_orders(orders, mids, PnLConfig(fee_bps=fee))
        ref = reference_pnl(orders, mids, fee)
        assert res.figures["n_fills"] == ref["n_fills"] == orders.height
        assert res.figures["net_pnl"] == pytest.approx(ref["net_pnl"], rel=1e-9, abs=1e-6)
        assert res.figures["max_drawdown"] == pytest.approx(ref["max_drawdown"], rel=1e-9, abs=1e-6)
        assert res.figures["sharpe"] == pytest.approx(ref["sharpe"], rel=1e-9)
    gross = pnl_from_orders(orders, mids, PnLConfig(fee_bps=0.0)).figures["net_pnl"]
    net = pnl_from_orders(orders, mids, PnLConfig(fee_bps=5.0)).figures
    turnover = float((orders["qty"] * orders["px_fill"]).sum())
    assert gross - net["net_pnl"] == pytest.approx(turnover * 5e-4) == pytest.approx(net["fees"])

"""The benchmarks' fixed-rate market: the rate it promises, bursts included, in rows the exchange serves."""

from __future__ import annotations

import polars as pl

from alpha_assets.market.binance import encode_agg_trade, encode_depth5, parse_partial_depth, parse_trade
from alpha_assets.market.rate_source import RateSource


def test_rate_source_serves_its_rate_and_its_burst_in_valid_rows() -> None:
    src = RateSource("BTCUSDT", start_ms=1_000_000, trades_per_s=200, seed=1, bursts=((2.0, 1.0, 2_000),))
    trades, books = [], []
    for t in range(1_000_000 + 7, 1_005_000 + 1, 7):  # advanced in uneven steps, as an exchange clock does
        tr, bk = src.advance_to(t)
        trades.append(tr)
        books.append(bk)
    tr, bk = src.advance_to(1_005_000)
    trades.append(tr)
    books.append(bk)
    sec = pl.concat(trades)["event_time_ms"].map_elements(lambda t: (t - 1_000_001) // 1000, return_dtype=pl.Int64)
    per_second = [int((sec == k).sum()) for k in range(5)]
    assert per_second[0] in range(198, 203) and per_second[2] in range(1_995, 2_006) and per_second[4] in range(198, 203)
    ids = [i for f in trades for i in f["agg_trade_id"].to_list()]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # dense, increasing: a gap would be a loss
    assert sum(f.height for f in books) == 50  # a snapshot every 100 ms
    row = trades[3].to_dicts()[0]
    assert parse_trade(encode_agg_trade(row), 1)["agg_trade_id"] == row["agg_trade_id"]
    book = next(f for f in books if f.height).to_dicts()[0]
    parsed = parse_partial_depth(encode_depth5(book), 1)
    assert parsed["bid_px_1"] < parsed["ask_px_1"] and parsed["last_update_id"] == book["last_update_id"]

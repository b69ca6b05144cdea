"""1-second preview bars, checked against a plain-Python reference and a hand-worked example."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import polars as pl
import pytest

from alpha_assets.market.preview import PREVIEW_SCHEMA, preview_bars
from alpha_assets.market.simulator import SimulatorConfig, SimulatorStream, day_start_ms

T0 = day_start_ms("2024-03-01") + 9 * 3_600_000


def reference_bars(trades: pl.DataFrame, book: pl.DataFrame) -> dict[tuple[str, int], dict[str, Any]]:
    """The same bars computed row by row, the way one would by hand."""
    bars: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
    for r in trades.sort("symbol", "event_time_ms", "agg_trade_id").iter_rows(named=True):
        b = bars[(r["symbol"], r["event_time_ms"] // 1000 * 1000)]
        px, q = r["price"], r["qty"]
        if "open" not in b:
            b.update(open=px, high=px, low=px, volume=0.0, buy_volume=0.0, sell_volume=0.0, trade_count=0, pq=0.0)
        b["high"], b["low"], b["close"] = max(b["high"], px), min(b["low"], px), px
        b["volume"] += q
        b["buy_volume" if not r["is_buyer_maker"] else "sell_volume"] += q
        b["trade_count"] += 1
        b["pq"] += px * q
    for r in book.sort("symbol", "event_time_ms", "last_update_id").iter_rows(named=True):
        b = bars[(r["symbol"], r["event_time_ms"] // 1000 * 1000)]
        b.update(best_bid=r["bid_px_1"], best_ask=r["ask_px_1"], bq=r["bid_qty_1"], aq=r["ask_qty_1"])
    for b in bars.values():
        if "pq" in b:
            b["vwap"] = b.pop("pq") / b["volume"]
        if "best_bid" in b:
            mid = (b["best_bid"] + b["best_ask"]) / 2
            b["spread_bps"] = (b["best_ask"] - b["best_bid"]) / mid * 1e4
            b["l1_imbalance"] = (b["bq"] - b["aq"]) / (b["bq"] + b["aq"])
    return bars


def test_matches_reference_on_simulated_minutes() -> None:
    cfg = SimulatorConfig(trades_per_day=300_000)
    frames = [SimulatorStream(sym, seed=3, start_ms=T0, cfg=cfg).advance_to(T0 + 120_000) for sym in ("BTCUSDT", "ETHUSDT")]
    trades = pl.concat([f[0] for f in frames]).sample(fraction=1.0, shuffle=True, seed=1)  # order must not matter
    book = pl.concat([f[1] for f in frames]).sample(fraction=1.0, shuffle=True, seed=2)
    bars = preview_bars(trades, book)
    assert bars.schema == pl.Schema(PREVIEW_SCHEMA)
    assert bars.height == 2 * 121  # (T0, T0 + 120 s] touches 121 seconds, each with book snapshots
    ref = reference_bars(trades, book)
    assert len(ref) == bars.height
    for row in bars.iter_rows(named=True):
        want = ref[(row["symbol"], row["ts_ms"])]
        for col in ("open", "high", "low", "close", "best_bid", "best_ask", "trade_count"):
            assert row[col] == want.get(col, 0 if col == "trade_count" else None), col
        for col in ("volume", "buy_volume", "sell_volume", "vwap", "spread_bps", "l1_imbalance"):
            expected = want.get(col, 0.0 if col.endswith("volume") else None)
            if expected is None:
                assert row[col] is None, col
            else:
                assert math.isclose(row[col], expected, rel_tol=1e-9, abs_tol=1e-12), col
    assert bars["symbol"].is_sorted() and bars.filter(pl.col("symbol") == "BTCUSDT")["ts_ms"].is_sorted()


def _book_row(t: int, bid: float, ask: float, bq: float, aq: float, uid: int) -> dict[str, Any]:
    row: dict[str, Any] = {"symbol": "BTCUSDT", "event_time_ms": t, "recv_time_ms": t, "first_update_id": uid,
                           "last_update_id": uid, "prev_last_update_id": uid - 1}
    for k in range(1, 6):
        row |= {f"bid_px_{k}": bid - k + 1, f"bid_qty_{k}": bq, f"ask_px_{k}": ask + k - 1, f"ask_qty_{k}": aq}
    return row


def test_hand_worked_second() -> None:
    from alpha_assets.market.schema import BOOK_SCHEMA, TRADE_SCHEMA

    trades = pl.DataFrame([
        {"symbol": "BTCUSDT", "event_time_ms": 1_000_100, "trade_time_ms": 1_000_100, "recv_time_ms": 1_000_105,
         "agg_trade_id": 1, "price": 100.0, "qty": 1.0, "is_buyer_maker": False},
        {"symbol": "BTCUSDT", "event_time_ms": 1_000_500, "trade_time_ms": 1_000_500, "recv_time_ms": 1_000_505,
         "agg_trade_id": 2, "price": 102.0, "qty": 3.0, "is_buyer_maker": True},
        {"symbol": "BTCUSDT", "event_time_ms": 1_000_900, "trade_time_ms": 1_000_900, "recv_time_ms": 1_000_905,
         "agg_trade_id": 3, "price": 99.0, "qty": 1.0, "is_buyer_maker": False},
    ], schema=TRADE_SCHEMA)
    book = pl.DataFrame([_book_row(1_000_000, 99.0, 101.0, 1.0, 1.0, 10),
                         _book_row(1_000_900, 98.0, 102.0, 3.0, 1.0, 11),
                         _book_row(1_002_000, 98.0, 102.0, 3.0, 1.0, 12)], schema=BOOK_SCHEMA)
    bars = preview_bars(trades, book)
    first = bars.row(0, named=True)
    assert (first["open"], first["high"], first["low"], first["close"]) == (100.0, 102.0, 99.0, 99.0)
    assert (first["volume"], first["buy_volume"], first["sell_volume"], first["trade_count"]) == (5.0, 2.0, 3.0, 3)
    assert first["vwap"] == pytest.approx((100 + 306 + 99) / 5)
    # the last snapshot of the second: 98 / 102, queues 3 vs 1
    assert (first["best_bid"], first["best_ask"]) == (98.0, 102.0)
    assert first["spread_bps"] == pytest.approx(4 / 100 * 1e4)
    assert first["l1_imbalance"] == pytest.approx(0.5)
    # a second with a snapshot and no trade: null prices, zero volume
    quiet = bars.row(1, named=True)
    assert quiet["ts_ms"] == 1_002_000 and quiet["open"] is None and quiet["volume"] == 0.0 and quiet["trade_count"] == 0

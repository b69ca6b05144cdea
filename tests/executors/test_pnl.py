"""pnl_curve / summary_stats: average-cost accounting by hand, the cash identity on routed orders,
Sharpe and drawdown definitions."""

from __future__ import annotations

import math

import polars as pl
import pytest
from pydantic import ValidationError

from executors.batch import RouteConfig, route_signals
from executors.pnl import CURVE_SCHEMA, PnLCurveConfig, minute_pnl, pnl_curve, summary_stats
from executors.pretrade import PreTradeConfig
from executors.risk import RiskConfig
from executors.testing.synthetic import synthetic_book, synthetic_signals

T0 = 1_704_585_600_000


def _orders(rows: list[tuple[str, int, str, float, float | None, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"symbol": s, "ts_ms": t, "ack_ts_ms": t + 5, "side": side, "qty": q, "px_fill": px, "status": st,
          "reason": "" if st != "rejected" else "risk:kill_switch:x", "client_order_id": f"c{k}"}
         for k, (s, t, side, q, px, st) in enumerate(rows)],
        schema_overrides={"px_fill": pl.Float64})


def _book(points: list[tuple[int, float]], symbol: str = "BTCUSDT") -> pl.DataFrame:
    return pl.DataFrame({"symbol": [symbol] * len(points), "event_time_ms": [t for t, _ in points],
                         "bid_px_1": [m - 0.5 for _, m in points], "ask_px_1": [m + 0.5 for _, m in points]})


def test_average_cost_by_hand() -> None:
    orders = _orders([("BTCUSDT", T0, "BUY", 1.0, 100.0, "filled"),
                      ("BTCUSDT", T0 + 60_000, "SELL", 2.0, 110.0, "filled"),  # +10 realised, flips short 1 @110
                      ("BTCUSDT", T0 + 90_000, "SELL", 1.0, None, "rejected"),
                      ("BTCUSDT", T0 + 120_000, "BUY", 1.0, 105.0, "filled")])  # +5 realised, flat
    book = _book([(T0 - 1_000, 99.0), (T0 + 30_000, 101.0), (T0 + 100_000, 108.0), (T0 + 180_000, 120.0)])
    c = pnl_curve(orders, book, {"fee_bps": 10.0, "mark_every_ms": 0})
    assert dict(c.schema) == CURVE_SCHEMA
    fills = c.filter(pl.col("event") == "fill")
    assert fills["ts_ms"].to_list() == [T0 + 5, T0 + 60_005, T0 + 120_005]  # booked when they filled
    assert fills["position"].to_list() == [1.0, -1.0, 0.0]
    assert fills["avg_px"].to_list() == [100.0, 110.0, 0.0]
    assert fills["realised"].to_list() == pytest.approx([0.0, 10.0, 15.0])
    assert fills["fees"].to_list() == pytest.approx([0.1, 0.32, 0.425])
    mark30 = c.filter(pl.col("ts_ms") == T0 + 30_000).row(0, named=True)
    assert mark30["event"] == "mark" and mark30["unrealised"] == pytest.approx(1.0)  # long 1, mid 101
    assert mark30["net"] == pytest.approx(0.9)
    mark100 = c.filter(pl.col("ts_ms") == T0 + 100_000).row(0, named=True)
    assert mark100["unrealised"] == pytest.approx(2.0) and mark100["net"] == pytest.approx(10 - 0.32 + 2)
    assert c["net_total"][-1] == pytest.approx(15 - 0.425)
    assert c.filter(pl.col("ts_ms") < T0)["net"].len() == 0  # marks start at the first fill
    s = summary_stats(orders, c)
    assert s["orders"] == 4 and s["filled"] == 3 and s["reject_rate"] == 0.25 and s["failure_rate"] == 0.0
    assert s["net_pnl"] == pytest.approx(14.575) and s["realised"] == pytest.approx(15.0)
    assert s["turnover"] == pytest.approx(425.0) and s["sharpe"] is None  # 4 minutes only
    # the flip is marked at mid 101 (short 1 @110: net 10 - 0.32 + 9 = 18.68), the mark at mid 108
    # gives 11.68: a drawdown of 7 from the peak
    flip = fills.row(1, named=True)
    assert flip["mid"] == 101.0 and flip["net"] == pytest.approx(18.68)
    assert s["max_drawdown"] == pytest.approx(7.0)


def test_drawdown_and_sharpe_definitions() -> None:
    # long 1 from 100; the mid rises to 110 then falls to 104 over 12 minutes
    orders = _orders([("BTCUSDT", T0, "BUY", 1.0, 100.0, "filled")])
    mids = [100, 102, 105, 110, 108, 106, 104, 104, 105, 104, 104, 104]
    book = _book([(T0 + 60_000 * k + 1_000, float(m)) for k, m in enumerate(mids)])
    c = pnl_curve(orders, book, PnLCurveConfig(fee_bps=0.0))
    s = summary_stats(orders, c)
    assert s["max_drawdown"] == pytest.approx(6.0) and s["net_pnl"] == pytest.approx(4.0)
    pnl = minute_pnl(c)
    assert pnl.len() == 12 and pnl.sum() == pytest.approx(4.0)
    want = pnl.mean() / pnl.std(ddof=1) * math.sqrt(525_600)  # type: ignore[operator]
    assert s["sharpe"] == pytest.approx(want) and s["minutes"] == 12


def test_cash_identity_and_total_over_symbols() -> None:
    # net after fees must equal cash + position * last mid, computed without average costs
    loose = RouteConfig(risk=RiskConfig(loss_pause_ms=0, max_daily_loss_ratio=1.0),
                        pretrade=PreTradeConfig(min_consistency=0.0))
    frames, books = [], []
    for sym, seed, mid in (("BTCUSDT", 3, 43_000.0), ("ETHUSDT", 4, 2_200.0)):
        bk = synthetic_book(sym, n=6_000, seed=seed, mid0=mid, tick=0.1 if sym == "BTCUSDT" else 0.01)
        books.append(bk)
        frames.append(route_signals(synthetic_signals(bk, n=20_000, seed=seed, active_frac=0.03), bk, "backtest",
                                    loose))
    orders, book = pl.concat(frames), pl.concat(books)
    c = pnl_curve(orders, book, {"fee_bps": 4.0})
    assert c["ts_ms"].is_sorted()
    want = 0.0
    for sym in ("BTCUSDT", "ETHUSDT"):
        f = orders.filter(pl.col("symbol") == sym, pl.col("status") == "filled")
        signed = pl.when(pl.col("side") == "BUY").then(pl.col("qty")).otherwise(-pl.col("qty"))
        cash = -f.select((signed * pl.col("px_fill")).sum()).item() - f.select(
            (pl.col("qty") * pl.col("px_fill")).sum()).item() * 4e-4
        pos = f.select(signed.sum()).item()
        last = c.filter(pl.col("symbol") == sym).row(-1, named=True)
        assert last["position"] == pytest.approx(pos, abs=1e-9)
        assert last["net"] == pytest.approx(cash + pos * last["mid"], rel=1e-9, abs=1e-6)
        want += last["net"]
    assert c["net_total"][-1] == pytest.approx(want, rel=1e-9)
    s = summary_stats(orders, c)
    assert s["filled"] == orders.filter(pl.col("status") == "filled").height > 100
    assert s["sharpe"] is not None and s["max_drawdown"] >= 0


def test_empty_and_bad_inputs() -> None:
    empty = _orders([("BTCUSDT", T0, "BUY", 1.0, None, "rejected")])
    c = pnl_curve(empty, _book([(T0, 100.0)]))
    assert c.height == 0 and dict(c.schema) == CURVE_SCHEMA
    assert summary_stats(empty, c)["net_pnl"] == 0.0
    with pytest.raises(ValueError, match="px_fill"):
        pnl_curve(empty.drop("px_fill"), _book([(T0, 100.0)]))
    with pytest.raises(ValidationError, match="fee_bps"):
        PnLCurveConfig(fee_bps=-1)

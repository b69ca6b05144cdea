"""BacktestExecutor slippage models and determinism; MockExecutor sampling and fills."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from executors.backtest import BacktestConfig, BacktestExecutor
from executors.batch import route_signals
from executors.contract import OrderCtx
from executors.metrics import stable_bucket
from executors.mock import MockConfig, MockExecutor
from executors.testing.synthetic import synthetic_book, synthetic_signals

T0 = 1_704_585_600_000


def _tiny_book(rows: list[tuple[int, float, float, float, float]]) -> pl.DataFrame:
    """Snapshots (ts, bid1, bid_qty1, ask1, ask_qty1); deeper levels one tick away, 1.0 each."""
    out = []
    for k, (ts, b, bq, a, aq) in enumerate(rows):
        r: dict[str, Any] = {"symbol": "BTCUSDT", "event_time_ms": ts, "last_update_id": k}
        for i in range(1, 6):
            r[f"bid_px_{i}"] = round(b - 0.1 * (i - 1), 1)
            r[f"ask_px_{i}"] = round(a + 0.1 * (i - 1), 1)
            r[f"bid_qty_{i}"] = bq if i == 1 else 1.0
            r[f"ask_qty_{i}"] = aq if i == 1 else 1.0
        out.append(r)
    return pl.DataFrame(out)


def _ctx(ts: int, side: str = "BUY", qty: float = 0.5, px: float = 100.1, seq: int = 1) -> OrderCtx:
    return OrderCtx(ts_ms=ts, event_ts_ms=ts, symbol="BTCUSDT", side=side, qty=qty, px_intent=px,  # type: ignore[arg-type]
                    tick_size=0.1, step_size=0.001, signal_seq=seq, signal_type="buy")


def test_taker_walks_the_book(book: pl.DataFrame, make_ctx: Any) -> None:
    ex = BacktestExecutor(book, BacktestConfig(slippage="taker_book", latency_ms_min=0, latency_ms_max=0))
    row = book.row(200, named=True)
    qty = round(row["ask_qty_1"] + row["ask_qty_2"] * 0.5, 3)
    ctx = make_ctx(i=200, qty=qty, ts_ms=row["event_time_ms"])
    r = ex.submit(ctx)
    want = (row["ask_qty_1"] * row["ask_px_1"] + (qty - row["ask_qty_1"]) * row["ask_px_2"]) / qty
    assert r.status == "filled" and r.px_fill == pytest.approx(want, rel=1e-12)
    assert r.slippage_bps == pytest.approx((want - ctx.px_intent) / ctx.px_intent * 1e4)
    assert r.slippage_bps > 0
    # beyond five levels: the rest pays level 5 plus beyond_book_bps
    deep = sum(row[f"ask_qty_{i}"] for i in range(1, 6))
    big = ex.submit(make_ctx(i=200, qty=round(deep * 2, 3), ts_ms=row["event_time_ms"], signal_seq=1))
    assert big.px_fill is not None and big.px_fill > row["ask_px_5"] * 0.9999


def test_fixed_bps_and_rounding_diff_in_slippage() -> None:
    bk = _tiny_book([(T0, 100.0, 1.0, 100.1, 1.0)])
    ex = BacktestExecutor(bk, BacktestConfig(slippage="fixed_bps", fixed_bps=2.0))
    r = ex.submit(_ctx(T0 + 1, px=100.04))  # off-grid intent: BUY rounds up to 100.1
    assert r.px_sent == 100.1 and r.rounding_applied and r.rounding_diff == pytest.approx(0.06)
    assert r.px_fill == pytest.approx(100.1 * 1.0002)
    assert r.slippage_bps == pytest.approx((100.1 * 1.0002 - 100.04) / 100.04 * 1e4)
    s = ex.submit(_ctx(T0 + 1, side="SELL", px=100.04, seq=2))  # SELL rounds down
    assert s.px_sent == 100.0 and s.rounding_diff == pytest.approx(-0.04)


def test_maker_queue_fills_after_queue_ahead_is_consumed() -> None:
    # bid level 100.0 shows 2.0 when we join; it trades down, refills behind us, trades down again
    rows = [(T0, 100.0, 2.0, 100.2, 1.0), (T0 + 100, 100.0, 1.5, 100.2, 1.0), (T0 + 200, 100.0, 0.4, 100.2, 1.0),
            (T0 + 300, 100.0, 3.0, 100.2, 1.0), (T0 + 400, 100.0, 1.0, 100.2, 1.0)]
    cfg = {"slippage": "maker_queue", "latency_ms_min": 0, "latency_ms_max": 0}
    ex = BacktestExecutor(_tiny_book(rows), BacktestConfig(queue_ahead_frac=1.0, **cfg))
    r = ex.submit(_ctx(T0, qty=0.3, px=100.2))
    # need 2.0 ahead + 0.3 own; consumed 0.5, 1.6, 1.6 (refill is no trade), 3.6 at T0+400
    assert r.status == "filled" and r.px_fill == 100.0 and r.ack_ts_ms == T0 + 400
    assert r.px_sent == 100.0 and r.slippage_bps == pytest.approx(-0.2 / 100.2 * 1e4)  # the maker earns the spread
    half = BacktestExecutor(_tiny_book(rows), BacktestConfig(queue_ahead_frac=0.5, **cfg))
    assert half.submit(_ctx(T0, qty=0.3, px=100.2)).ack_ts_ms == T0 + 200  # need 1.3: 1.6 at T0+200


def test_maker_fills_on_cross_and_stays_accepted_otherwise() -> None:
    rows = [(T0, 100.0, 5.0, 100.2, 1.0), (T0 + 100, 100.0, 5.0, 100.1, 1.0), (T0 + 200, 99.9, 5.0, 100.0, 1.0)]
    ex = BacktestExecutor(_tiny_book(rows), BacktestConfig(slippage="maker_queue", latency_ms_min=0,
                                                           latency_ms_max=0, maker_horizon_ms=1_000))
    r = ex.submit(_ctx(T0, qty=0.3))
    assert r.status == "filled" and r.ack_ts_ms == T0 + 200  # the ask came down to our bid
    quiet = [(T0 + 100 * k, 100.0, 5.0, 100.2, 1.0) for k in range(20)]
    ex2 = BacktestExecutor(_tiny_book(quiet), BacktestConfig(slippage="maker_queue", maker_horizon_ms=1_000))
    r2 = ex2.submit(_ctx(T0, qty=0.3))
    assert r2.status == "accepted" and r2.px_fill is None and r2.reject_reason == "unfilled_at_horizon"
    assert ex2.cancel("BTCUSDT", r2.client_order_id).status == "canceled"


def test_no_book_and_stale_book_are_rejected() -> None:
    bk = _tiny_book([(T0, 100.0, 1.0, 100.1, 1.0)])
    ex = BacktestExecutor(bk, BacktestConfig(max_book_age_ms=1_000))
    assert ex.submit(_ctx(T0 - 100)).reject_reason == "no_book"
    assert ex.submit(_ctx(T0 + 5_000)).reject_reason == "stale_book"
    strong = _ctx(T0).model_copy(update={"signal_type": "strong_buy"})
    assert MockExecutor(None).submit(strong).reject_reason == "no_book"


def test_latency_is_seeded_per_order(book: pl.DataFrame, make_ctx: Any) -> None:
    a = BacktestExecutor(book, BacktestConfig(seed=1))
    b = BacktestExecutor(book, BacktestConfig(seed=1))
    c = BacktestExecutor(book, BacktestConfig(seed=2))
    ctxs = [make_ctx(i=i) for i in range(10, 60)]
    la = [a.submit(x).latency_ms for x in ctxs]
    lb = [b.submit(x).latency_ms for x in reversed(ctxs)][::-1]  # order of submission does not matter
    lc = [c.submit(x).latency_ms for x in ctxs]
    assert la == lb and la != lc
    assert all(5 <= x <= 25 for x in la)  # type: ignore[operator]


def test_two_backtests_write_identical_files(tmp_path: Path) -> None:
    bk = synthetic_book(n=4_000, seed=3)
    sig = synthetic_signals(bk, n=30_000, seed=5, active_frac=0.02)
    digests = []
    for k in range(2):
        out = route_signals(sig, bk, "backtest", run_id="r1")
        p = tmp_path / f"orders_{k}.parquet"
        out.write_parquet(p, statistics=False)
        digests.append(hashlib.sha256(p.read_bytes()).hexdigest())
    print(f"backtest orders sha256: {digests[0]} / {digests[1]} ({out.height} rows)")
    assert digests[0] == digests[1]
    assert out.filter(pl.col("status") == "filled").height > 10


def test_mock_routes_every_strong_and_one_in_five_ordinary(book: pl.DataFrame, make_ctx: Any) -> None:
    ex = MockExecutor(book, MockConfig(latency_ms=40))
    strong = [ex.submit(make_ctx(i=i, signal_seq=i)) for i in range(100, 400)]
    assert all(r.status == "filled" for r in strong)
    plain = [make_ctx(i=i, signal_seq=100_000 + i, signal_type="buy") for i in range(100, 2100)]
    res = [ex.submit(c) for c in plain]
    routed = [r.status == "filled" for r in res]
    assert routed == [stable_bucket(f"paper|BTCUSDT|{c.signal_seq}", 5) == 0 for c in plain]
    assert 0.17 < sum(routed) / len(routed) < 0.23
    assert {r.reject_reason for r, ok in zip(res, routed, strict=True) if not ok} == {"paper_sampled_out"}
    r = strong[0]
    row = book.row(int(book["event_time_ms"].search_sorted(r.ack_ts_ms, side="right")) - 1, named=True)
    assert r.ack_ts_ms - r.sent_ts_ms == 40 and r.px_fill == row["ask_px_1"]


def test_backtest_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="latency_ms_max"):
        BacktestConfig(latency_ms_min=10, latency_ms_max=5)
    with pytest.raises(ValidationError, match="slippage"):
        BacktestConfig(slippage="magic")  # type: ignore[arg-type]

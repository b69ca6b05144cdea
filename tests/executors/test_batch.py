"""route_signals: the Orders frame the mock_orders asset gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from alpha_assets.reports.pnl import PnLConfig, mids_from_book, pnl_from_orders
from executors.backtest import BacktestExecutor
from executors.batch import ORDERS_SCHEMA, RouteConfig, Router, SizingConfig, route_signals
from executors.exchange import ExchangeExecutor
from executors.metrics import ExecutorMetrics
from executors.outbox import Outbox
from executors.pretrade import PreTradeConfig
from executors.risk import RiskConfig
from executors.shadow import ShadowExecutor
from executors.testing.synthetic import synthetic_book, synthetic_signals

INTERFACE_COLS = ["run_id", "symbol", "signal_seq", "ts_ms", "client_order_id", "side", "qty", "px_intent",
                  "px_sent", "px_fill", "rounding_applied", "rounding_diff", "slippage_bps", "status", "reason",
                  "exchange_order_id", "sent_ts_ms", "ack_ts_ms", "latency_ms", "regime", "signal_type"]
LOOSE = RouteConfig(risk=RiskConfig(loss_pause_ms=0, max_daily_loss_ratio=1.0),
                    pretrade=PreTradeConfig(min_consistency=0.0))


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    bk = synthetic_book(n=3_000, seed=9)
    return bk, synthetic_signals(bk, n=25_000, seed=2, active_frac=0.02)


def test_orders_frame_shape_and_mapping(data: Any) -> None:
    bk, sig = data
    out = route_signals(sig, bk, "backtest", LOOSE, run_id="r9")
    assert out.columns == INTERFACE_COLS and dict(out.schema) == ORDERS_SCHEMA
    routable = sig.filter(pl.col("signal_type") != "neutral", pl.col("score").is_not_null())
    assert out.height == routable.height  # one row per non-neutral scored signal, null scores skipped
    assert out["signal_seq"].to_list() == routable.sort("ts_ms", "symbol", "seq")["seq"].to_list()
    assert out["ts_ms"].is_sorted()
    want_side = out["signal_type"].replace_strict({"buy": "BUY", "strong_buy": "BUY", "sell": "SELL",
                                                   "strong_sell": "SELL"})
    assert (out["side"] == want_side).all()
    # px_intent is the as-of touch: ask for BUY, bid for SELL
    j = out.join_asof(bk.select("event_time_ms", "bid_px_1", "ask_px_1"), left_on="ts_ms", right_on="event_time_ms")
    touch = pl.when(pl.col("side") == "BUY").then(pl.col("ask_px_1")).otherwise(pl.col("bid_px_1"))
    assert j.select((pl.col("px_intent") == touch).all()).item()
    warm = out.join(sig.select(pl.col("seq").alias("signal_seq"), "warmup"), on="signal_seq")
    assert (warm.filter(pl.col("warmup"))["reason"] == "pre_deny:warmup").all()
    assert set(out["status"].unique()) <= {"filled", "rejected", "accepted"}
    assert out.filter(pl.col("status") == "filled").height > 100
    strong = out.filter(pl.col("signal_type").str.starts_with("strong"), pl.col("status") == "filled")
    plain = out.filter(~pl.col("signal_type").str.starts_with("strong"), pl.col("status") == "filled")
    assert (strong["qty"] * strong["px_intent"]).mean() > 1.5 * (plain["qty"] * plain["px_intent"]).mean()


def test_orders_feed_the_pnl_report(data: Any) -> None:
    bk, sig = data
    out = route_signals(sig, bk, "backtest", LOOSE)
    res = pnl_from_orders(out, mids_from_book(bk), PnLConfig(fee_bps=5.0))
    assert res.figures["n_fills"] == out.filter(pl.col("status") == "filled").height
    assert res.figures["fees"] > 0


def test_no_book_and_empty_inputs(data: Any) -> None:
    bk, sig = data
    early = sig.with_columns(pl.col("ts_ms") - 10**7)
    out = route_signals(early, bk, "backtest", LOOSE)
    assert out.height > 0 and (out["reason"] == "no_book").all()
    assert route_signals(sig.filter(pl.col("signal_type") == "neutral"), bk).columns == INTERFACE_COLS
    with pytest.raises(ValueError, match="signal_type"):
        route_signals(sig.drop("signal_type"), bk)
    with pytest.raises(ValueError, match="executor"):
        route_signals(sig, bk, "quantum")


def test_risk_gates_apply_in_batch(data: Any) -> None:
    bk, sig = data
    tight = RouteConfig(risk=RiskConfig(max_consecutive_losses=2, loss_pause_ms=10**9))
    out = route_signals(sig, bk, "backtest", tight)
    paused = out.filter(pl.col("reason").str.starts_with("risk:consecutive_losses"))
    assert paused.height > 0
    first = paused["ts_ms"].min()
    assert out.filter(pl.col("ts_ms") > first, pl.col("status") == "filled").height == 0


def test_mock_and_outbox(data: Any, tmp_path: Path) -> None:
    bk, sig = data
    with Outbox(tmp_path) as ob:
        out = route_signals(sig, bk, "mock", LOOSE, run_id="r1", outbox=ob)
    assert out.filter(pl.col("reason") == "paper_sampled_out").height > 0
    events = pl.concat([pl.read_ndjson(f) for f in sorted((tmp_path / "exec_events" / "BTCUSDT").glob("exec_*.jsonl"))])
    assert events.height == out.height
    assert sorted(events["client_order_id"].to_list()) == sorted(out["client_order_id"].to_list())


def test_sizing_config_errors_name_the_field() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="notional_usd"):
        SizingConfig(notional_usd=0)
    with pytest.raises(ValidationError, match="tick_size"):
        SizingConfig(tick_size={"BTCUSDT": 0})


def test_shadow_through_batch_reports_parity(exchange: ExchangeExecutor, data: Any) -> None:
    bk, sig = data
    small = sig.filter(pl.col("signal_type") != "neutral").head(40)
    m = ExecutorMetrics("shadow")
    sh = ShadowExecutor(exchange, BacktestExecutor(bk), m)
    out = route_signals(small, bk, sh, LOOSE)
    assert len(sh.records) == out.filter(pl.col("exchange_order_id") != "").height > 0
    # the exchange leaves IOC limits resting (accepted), the backtest fills: status disagrees,
    # intent price agrees
    assert all(r.px_sent_agree for r in sh.records) and not any(r.status_agree for r in sh.records)
    assert m.value("executor_shadow_parity_ratio") == sh.parity_ratio == 0.0


def test_bad_rows_and_a_failing_executor_never_crash_the_batch(data: Any) -> None:
    bk, sig = data
    active = sig.filter(pl.col("signal_type") != "neutral", pl.col("score").is_not_null()).head(30)
    bad = active.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(pl.lit(-5, pl.Int64))
                              .otherwise(pl.col("seq")).alias("seq"))
    out = route_signals(bad, bk, "backtest", LOOSE)
    assert out.height == 30
    assert (out.filter(pl.col("signal_seq") == -5)["reason"] == "bad_signal:signal_seq").all()

    class Flaky(BacktestExecutor):
        calls = 0

        def submit(self, ctx: Any) -> Any:
            self.calls += 1
            if self.calls % 2:
                raise TimeoutError("venue hiccup")
            return super().submit(ctx)

    out2 = route_signals(active, bk, Flaky(bk), LOOSE)
    assert out2.height == 30
    assert out2.filter(pl.col("reason") == "executor_error:TimeoutError").height > 0
    assert out2.filter(pl.col("status") == "filled").height > 0


@pytest.mark.parametrize("kind", ["mock", "backtest"])
def test_router_in_minute_chunks_equals_one_batch(kind: str) -> None:
    # the live broker routes minute by minute: gate state (consecutive-loss pauses, daily loss,
    # kill switch) and idempotency must carry over, so the Orders equal one batch over the day
    bk = synthetic_book(n=20_000, seed=3)
    sig = synthetic_signals(bk, n=60_000, seed=5, active_frac=0.05)
    cfg = RouteConfig(risk=RiskConfig(max_consecutive_losses=3, loss_pause_ms=120_000))
    whole = route_signals(sig, bk, kind, cfg, run_id="r1")
    assert whole.filter(pl.col("reason").str.starts_with("risk:consecutive_losses")).height > 0
    window = cfg.risk.vol_window_ms
    chunks = sig.with_columns((pl.col("ts_ms") // 60_000).alias("_m")).partition_by("_m", maintain_order=True)

    def book_for(c: pl.DataFrame) -> pl.DataFrame:  # what the broker has landed around the chunk
        lo, hi = int(c["ts_ms"].min()) - 2 * window, int(c["ts_ms"].max()) + 1_000
        return bk.filter(pl.col("event_time_ms").is_between(lo, hi))

    router = Router(kind, cfg, run_id="r1")
    chunked = pl.concat([router.route(c.drop("_m"), book_for(c)) for c in chunks])
    assert chunked.equals(whole)
    # without the carried state the answer differs: a fresh gate per minute forgets the pauses
    fresh = pl.concat([route_signals(c.drop("_m"), book_for(c), kind, cfg, run_id="r1") for c in chunks])
    assert fresh.filter(pl.col("status") == "filled").height > whole.filter(pl.col("status") == "filled").height
    # routing a chunk again (a restart replays it) creates no new order: same answers, flagged duplicate
    again = router.route(chunks[3].drop("_m"), book_for(chunks[3]))
    prev = chunked.filter(pl.col("signal_seq").is_in(again["signal_seq"].implode()))
    assert again.select("client_order_id", "status", "px_fill").equals(prev.select("client_order_id", "status", "px_fill"))

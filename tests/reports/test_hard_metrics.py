"""Hard-metric thresholds and backtest-vs-paper agreement."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from reports_synth import make_mids, make_orders, make_signals

from alpha_assets.reports.hard_metrics import (
    HardMetricsConfig,
    HardMetricsConfigError,
    backtest_vs_paper,
    compare_backtest_paper,
    evaluate_hard_metrics,
)
from alpha_assets.reports.summary import build_summary


def _summary(reject_p: float, seed: int = 1) -> dict:
    sig = make_signals("BTCUSDT", 2000, seed=seed, minutes=15)
    return build_summary(sig, make_orders(sig, seed + 1, reject_p=reject_p), mids=make_mids(sig, seed + 2),
                         parity=None, data_mode="raw", dropped=0, warnings=[], date="2024-01-07", symbol="BTCUSDT")


def _by_name(results: list) -> dict:
    return {r.name: r for r in results}


def test_thresholds_pass_and_fail_on_the_summary_values() -> None:
    s = _summary(reject_p=0.2)
    assert s["reject_rate"] > 0.1 and s["sharpe"] is not None and s["max_drawdown_frac"] is not None
    loose = HardMetricsConfig(min_sharpe=s["sharpe"] - 1, max_drawdown=min(1.0, s["max_drawdown_frac"] + 0.01),
                              max_reject_rate=s["reject_rate"] + 0.01)
    assert all(r.passed for r in evaluate_hard_metrics(s, loose))
    tight = HardMetricsConfig(min_sharpe=s["sharpe"] + 1, max_drawdown=s["max_drawdown_frac"] * 0.5,
                              max_reject_rate=s["reject_rate"] - 0.01)
    res = _by_name(evaluate_hard_metrics(s, tight))
    assert not res["sharpe"].passed and not res["max_drawdown"].passed and not res["reject_rate"].passed
    assert res["reject_rate"].value == pytest.approx(s["reject_rate"])
    assert "breaches" in res["reject_rate"].description


def test_default_reject_rate_gate() -> None:
    res = _by_name(evaluate_hard_metrics(_summary(reject_p=0.3)))
    assert res["reject_rate"].threshold == HardMetricsConfig().max_reject_rate
    assert not res["reject_rate"].passed
    assert _by_name(evaluate_hard_metrics(_summary(reject_p=0.0)))["reject_rate"].passed


def test_unmeasurable_fails_with_its_reason() -> None:
    sig = make_signals("BTCUSDT", 50, seed=1)
    s = build_summary(sig, make_orders(sig, 1).head(0), mids=None, parity=None, data_mode="raw", dropped=0,
                      warnings=[], date="2024-01-07", symbol="BTCUSDT")
    res = evaluate_hard_metrics(s)
    assert all(r.value is None and not r.measured and not r.passed and "not measurable" in r.description
               for r in res)
    # No setting turns "could not measure" into a pass: the old switch is a configuration error now.
    with pytest.raises(HardMetricsConfigError, match=r"hard_metrics\.fail_when_unmeasurable"):
        HardMetricsConfig.from_mapping({"fail_when_unmeasurable": False})


@pytest.mark.parametrize(("raw", "field"), [
    ({"max_drawdown": 2.0}, "max_drawdown"),
    ({"max_reject_rate": -0.1}, "max_reject_rate"),
    ({"min_sharpe": "high"}, "min_sharpe"),
    ({"min_sharpe": float("nan")}, "min_sharpe"),
    ({"max_dd": 0.1}, "max_dd"),
])
def test_bad_config_names_the_field(raw: dict, field: str) -> None:
    with pytest.raises(HardMetricsConfigError, match=rf"hard_metrics\.{field}"):
        HardMetricsConfig.from_mapping(raw)


def test_bad_config_states_the_range() -> None:
    with pytest.raises(HardMetricsConfigError, match="le=1"):
        HardMetricsConfig.from_mapping({"max_drawdown": 2.0})


# --- backtest vs paper ----------------------------------------------------------------------


def _route_factory(fill_fraction: float, px_shift: float = 0.0):
    """A deterministic stand-in router: fills the first `fill_fraction` of directional signals."""

    def route(signals: pl.DataFrame, book: pl.DataFrame, *, executor: str) -> pl.DataFrame:
        orders = make_orders(signals, seed=0, reject_p=0.0, accept_p=0.0)
        keep = np.arange(orders.height) < int(round(orders.height * fill_fraction))
        return orders.with_columns(
            pl.when(pl.Series(keep)).then(pl.lit("filled")).otherwise(pl.lit("rejected")).alias("status"),
            # px_shift > 0 fills every order at a worse price (BUY higher, SELL lower).
            pl.when(pl.Series(keep))
            .then(pl.col("px_fill") + pl.when(pl.col("side") == "BUY").then(px_shift).otherwise(-px_shift))
            .otherwise(None)
            .alias("px_fill"),
        )

    return route


def _book_for(signals: pl.DataFrame) -> pl.DataFrame:
    mids = make_mids(signals, 5)
    return mids.select("symbol", pl.col("ts_ms").alias("event_time_ms"), (pl.col("mid") - 0.01).alias("bid_px_1"),
                       (pl.col("mid") + 0.01).alias("ask_px_1"))


def test_compare_identical_passes_and_divergent_fails() -> None:
    sig = make_signals("BTCUSDT", 1500, seed=3, minutes=10)
    book = _book_for(sig)
    same = backtest_vs_paper(sig, book, route=_route_factory(1.0), backtest_executor="bt", paper_executor="paper")
    assert same.status == "pass" and same.fills_rel_diff == 0 and same.pnl_rel_diff == 0
    fewer = backtest_vs_paper(sig, book, route=lambda s, b, executor: _route_factory(
        1.0 if executor == "bt" else 0.8)(s, b, executor=executor), backtest_executor="bt", paper_executor="paper")
    assert fewer.status == "fail" and fewer.fills_rel_diff == pytest.approx(0.2, abs=0.01)


def test_compare_pnl_difference_alone_fails() -> None:
    sig = make_signals("BTCUSDT", 1500, seed=4, minutes=10)
    mids = make_mids(sig, 5)
    bt = _route_factory(1.0)(sig, None, executor="bt")
    paper = _route_factory(1.0, px_shift=0.05)(sig, None, executor="paper")  # worse prices on every fill
    res = compare_backtest_paper(bt, paper, mids)
    assert res.fills_rel_diff == 0
    assert res.pnl_rel_diff is not None and res.pnl_rel_diff > 0.10 and res.status == "fail"


def test_too_few_fills_is_insufficient_observation() -> None:
    sig = make_signals("BTCUSDT", 40, seed=6, minutes=2)
    mids = make_mids(sig, 7)
    orders = _route_factory(1.0)(sig, None, executor="bt")
    assert 0 < orders.filter(pl.col("status") == "filled").height < 30
    res = compare_backtest_paper(orders, orders, mids)
    assert res.status == "insufficient_observation" and not res.passed and res.fills_rel_diff is None


def test_backtest_and_paper_broker_on_real_executors() -> None:
    from alpha_assets.engine import compute_features, compute_signals
    from alpha_assets.market.replay import load_replay

    data = load_replay("2024-08-08", "BTCUSDT")
    signals = compute_signals(compute_features(data["trades"], data["book"]), run_id="t")
    res = backtest_vs_paper(signals, data["book"])
    assert res.status in ("pass", "fail", "insufficient_observation")
    assert res.fills_backtest > 0 and res.fills_paper > 0
    # The paper broker samples ordinary signals 1 in 5, so it never fills more than the backtest.
    assert res.fills_paper <= res.fills_backtest

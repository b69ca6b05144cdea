"""Pre-trade and risk gates: denials, deterministic throttling, kill switch, daily loss ratio,
consecutive losses, volatility breaker with UTC hour multipliers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from executors.contract import ExecResult, client_order_id
from executors.metrics import ExecutorMetrics
from executors.pretrade import PreTrade, PreTradeConfig, guard_label
from executors.risk import HOUR_MS, RiskConfig, RiskManager


def _fill(ctx: Any, px: float, qty: float | None = None) -> ExecResult:
    return ExecResult(status="filled", client_order_id=client_order_id(ctx), symbol=ctx.symbol, side=ctx.side,
                      qty_sent=qty if qty is not None else ctx.qty, px_sent=px, px_fill=px)


def test_warmup_and_guard_deny_and_count(make_ctx: Any) -> None:
    m = ExecutorMetrics("t")
    pre = PreTrade(PreTradeConfig(), m)
    d = pre.check(make_ctx(warmup=True))
    assert not d.allowed and d.reason == "pre_deny:warmup"
    d = pre.check(make_ctx(guard_reason="spread_too_high_12.3bps"))
    assert not d.allowed and d.label == "guard_spread_too_high"
    assert pre.check(make_ctx()).allowed
    assert m.value("executor_pre_deny_total", reason="warmup") == 1
    assert m.value("executor_pre_deny_total", reason="guard_spread_too_high") == 1
    ignoring = PreTrade(PreTradeConfig(ignored_guards=["spread_too_high"]))
    assert ignoring.check(make_ctx(guard_reason="spread_too_high_1.0bps")).allowed
    assert guard_label("lag_exceeded_1.25s") == "lag_exceeded" and guard_label("warmup_guard") == "warmup_guard"


def test_low_consistency_throttle_is_deterministic(make_ctx: Any) -> None:
    m = ExecutorMetrics("t")
    pre = PreTrade(PreTradeConfig(min_consistency=0.5, low_consistency_keep=0.25), m)
    ctxs = [make_ctx(signal_seq=s, consistency=0.1) for s in range(4_000)]
    kept = [pre.check(c).allowed for c in ctxs]
    assert kept == [PreTrade(pre.cfg).check(c).allowed for c in ctxs]  # same orders on a rerun
    share = sum(kept) / len(kept)
    assert 0.22 < share < 0.28
    assert m.value("executor_throttle_total", reason="low_consistency") == len(kept) - sum(kept)
    assert all(pre.check(make_ctx(signal_seq=s, consistency=0.9)).allowed for s in range(200))


def test_kill_switch_expires_in_event_time(make_ctx: Any) -> None:
    m = ExecutorMetrics("t")
    risk = RiskManager(RiskConfig(), m)
    ctx = make_ctx()
    risk.kill.trip("manual_ops", until_ms=ctx.ts_ms + 1_000)
    d = risk.check(ctx)
    assert not d.allowed and d.reason == "risk:kill_switch:manual_ops"
    assert risk.check(make_ctx(ts_ms=ctx.ts_ms + 999)).allowed is False
    assert risk.check(make_ctx(ts_ms=ctx.ts_ms + 1_000)).allowed
    risk.kill.trip("indefinite")
    assert not risk.check(make_ctx(ts_ms=ctx.ts_ms + 10**9)).allowed
    risk.kill.reset()
    assert risk.check(make_ctx(ts_ms=ctx.ts_ms + 10**9)).allowed
    assert m.value("executor_pre_deny_total", reason="kill_switch") == 3


def test_daily_loss_ratio_stops_the_day_and_resets_next_day(make_ctx: Any) -> None:
    risk = RiskManager(RiskConfig(max_daily_loss_ratio=0.01, min_gross_notional=100, fee_bps=0))
    small = RiskManager(RiskConfig(max_daily_loss_ratio=0.01, min_gross_notional=1_000, fee_bps=0))
    buy = make_ctx(side="BUY", qty=1.0, px_intent=100.0)
    risk.on_fill(buy, _fill(buy, 100.0))
    sell = make_ctx(side="SELL", qty=1.0, px_intent=97.0, ts_ms=buy.ts_ms + 10)
    realised = risk.on_fill(sell, _fill(sell, 97.0))
    small.on_fill(buy, _fill(buy, 100.0))
    small.on_fill(sell, _fill(sell, 97.0))
    assert small.check(make_ctx(ts_ms=buy.ts_ms + 20)).allowed  # too little traded to judge
    assert realised == pytest.approx(-3.0)
    # gross 197, net -3: ratio 1.52 % >= 1 %
    assert risk.daily_loss_ratio == pytest.approx(3 / 197)
    d = risk.check(make_ctx(ts_ms=buy.ts_ms + 20))
    assert not d.allowed and d.label == "daily_loss"
    next_day = (buy.ts_ms // 86_400_000 + 1) * 86_400_000 + 5
    assert risk.check(make_ctx(ts_ms=next_day, event_ts_ms=next_day)).allowed


def test_consecutive_losses_pause_a_strategy(make_ctx: Any) -> None:
    cfg = RiskConfig(max_consecutive_losses=3, loss_pause_ms=60_000, fee_bps=0, min_gross_notional=1e12)
    risk = RiskManager(cfg)
    t = make_ctx().ts_ms
    for k in range(3):
        b = make_ctx(side="BUY", qty=1.0, px_intent=100.0, ts_ms=t + k * 10, scenario="s1")
        s = make_ctx(side="SELL", qty=1.0, px_intent=99.0, ts_ms=t + k * 10 + 5, scenario="s1")
        risk.on_fill(b, _fill(b, 100.0))
        assert risk.on_fill(s, _fill(s, 99.0)) < 0
    d = risk.check(make_ctx(ts_ms=t + 40, scenario="s1"))
    assert not d.allowed and d.label == "consecutive_losses"
    assert risk.check(make_ctx(ts_ms=t + 40, scenario="other")).allowed  # per strategy
    assert risk.check(make_ctx(ts_ms=t + 25 + 60_000, scenario="s1")).allowed  # pause over


def test_volatility_breaker_uses_symbol_threshold_hour_multiplier_and_trips_kill(make_ctx: Any) -> None:
    base = make_ctx().ts_ms
    hour = (base % 86_400_000) // HOUR_MS
    cfg = RiskConfig(vol_threshold_bps=50, vol_threshold_bps_by_symbol={"BTCUSDT": 100},
                     hour_multipliers={hour: 2.0}, vol_kill_ms=30_000)
    risk = RiskManager(cfg)
    assert cfg.vol_threshold("BTCUSDT", base) == 200 and cfg.vol_threshold("ETHUSDT", base + HOUR_MS) == 50
    assert risk.check(make_ctx(), move_bps=150).allowed  # 150 < 100 * 2
    d = risk.check(make_ctx(ts_ms=base + 1), move_bps=250)
    assert not d.allowed and d.label == "volatility"
    later = make_ctx(ts_ms=base + 10_000)
    assert risk.check(later, move_bps=0).reason.startswith("risk:kill_switch:volatility_BTCUSDT")
    assert risk.check(make_ctx(ts_ms=base + 10_000, symbol="ETHUSDT"), move_bps=0).label == "kill_switch"
    assert risk.check(make_ctx(ts_ms=base + 1 + 30_000), move_bps=0).allowed
    scoped = RiskManager(cfg.model_copy(update={"vol_kill_scope": "symbol"}))
    assert not scoped.check(make_ctx(ts_ms=base + 1), move_bps=250).allowed
    assert scoped.check(make_ctx(ts_ms=base + 2), move_bps=0).label == "kill_switch"
    assert scoped.check(make_ctx(ts_ms=base + 2, symbol="ETHUSDT"), move_bps=0).allowed
    # without an external measure the breaker uses the prices it has seen
    r2 = RiskManager(RiskConfig(vol_threshold_bps=100, vol_window_ms=60_000))
    r2.on_price("BTCUSDT", base - 1_000, 100.0)
    assert not r2.check(make_ctx(px_intent=101.5, event_ts_ms=base)).allowed


@pytest.mark.parametrize(("kw", "field"), [({"max_daily_loss_ratio": 0}, "max_daily_loss_ratio"),
                                           ({"hour_multipliers": {24: 1.0}}, "hour_multipliers"),
                                           ({"vol_threshold_bps_by_symbol": {"BTCUSDT": -1}},
                                            "vol_threshold_bps_by_symbol"),
                                           ({"max_consecutive_losses": 0}, "max_consecutive_losses")])
def test_risk_config_errors_name_the_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        RiskConfig(**kw)


def test_pretrade_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="low_consistency_keep"):
        PreTradeConfig(low_consistency_keep=1.5)


def test_gated_replay_keeps_the_first_answer_and_counts_once(book_index: Any, make_ctx: Any) -> None:
    from executors.gated import GatedExecutor
    from executors.mock import MockExecutor

    m = ExecutorMetrics("t")
    g = GatedExecutor(MockExecutor(book_index, metrics=m), PreTradeConfig(min_consistency=0.5,
                                                                          low_consistency_keep=0.0), metrics=m)
    filled = g.submit(make_ctx(i=10))
    throttled = g.submit(make_ctx(i=11, consistency=0.1))
    assert filled.status == "filled" and throttled.reject_reason == "throttle:low_consistency"
    g.risk.kill.trip("ops")  # the world changed since: a replay must not turn the fill into a denial
    again = g.submit(make_ctx(i=10))
    assert again.duplicate and again.status == "filled" and again.px_fill == filled.px_fill
    assert g.submit(make_ctx(i=11, consistency=0.1)).duplicate
    assert m.value("executor_throttle_total", reason="low_consistency") == 1
    assert m.value("executor_pre_deny_total", reason="kill_switch") == 0
    assert g.submit(make_ctx(i=12)).reject_reason == "risk:kill_switch:ops"  # a new intent is gated

"""Per-instance metrics, deterministic log sampling, shadow parity."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl
import pytest

from executors.backtest import BacktestConfig, BacktestExecutor
from executors.contract import ExecResult
from executors.metrics import ExecutorMetrics, SampledLogger
from executors.mock import MockExecutor
from executors.shadow import ShadowExecutor


def test_registries_are_per_instance_and_count_results(book: pl.DataFrame, make_ctx: Any) -> None:
    a, b = BacktestExecutor(book), BacktestExecutor(book)  # two in one process: no duplicate-metric error
    for i in range(20):
        a.submit(make_ctx(i=100 + i))
    a.submit(make_ctx(i=100))  # a duplicate is not a new order
    a.submit(make_ctx(i=0, ts_ms=0, event_ts_ms=0))  # no book yet
    assert a.metrics.value("executor_submit_total", result="filled", reason="") == 20
    assert a.metrics.value("executor_submit_total", result="rejected", reason="no_book") == 1
    assert a.metrics.value("executor_latency_ms_count") == 20
    assert b.metrics.value("executor_submit_total", result="filled", reason="") == 0
    assert b"executor_submit_total" in a.metrics.exposition()


def _res(i: int, status: str = "filled", reason: str = "") -> ExecResult:
    return ExecResult(status=status, reject_reason=reason, client_order_id=f"aa-{i:08d}")  # type: ignore[arg-type]


def test_log_sampling_one_percent_of_passes_all_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="t")
    s = SampledLogger(logging.getLogger("t"))
    passes = [s.log(_res(i)) for i in range(20_000)]
    assert 0.008 < sum(passes) / len(passes) < 0.012
    assert passes == [SampledLogger(logging.getLogger("t")).should_log(_res(i)) for i in range(20_000)]
    fails = [s.log(_res(i, "rejected", "exchange:-2019:Margin is insufficient.")) for i in range(300)]
    assert all(fails)
    deliberate = [s.should_log(_res(i, "rejected", "paper_sampled_out")) for i in range(20_000)]
    assert sum(deliberate) < 300  # strategy decisions are sampled like passes
    assert len(caplog.records) == sum(passes) + 300
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 300


def test_shadow_parity_agreeing_and_disagreeing(book: pl.DataFrame, make_ctx: Any) -> None:
    same = ShadowExecutor(BacktestExecutor(book), BacktestExecutor(book))
    for i in range(30):
        same.submit(make_ctx(i=200 + i))
    assert same.parity_ratio == 1.0 and same.metrics.value("executor_shadow_parity_ratio") == 1.0
    m = ExecutorMetrics("shadow")
    mixed = ShadowExecutor(BacktestExecutor(book), MockExecutor(book), m)
    ctxs = [make_ctx(i=300 + i, signal_type="buy", signal_seq=300 + i) for i in range(200)]
    res = [mixed.submit(c) for c in ctxs]
    assert all(r.status == "filled" for r in res)  # the primary answers
    agree = [r.agree for r in mixed.records]
    assert 0 < sum(agree) < len(agree)  # the paper broker samples 1 in 5 out
    assert m.value("executor_shadow_parity_ratio") == pytest.approx(sum(agree) / len(agree))
    assert {r.shadow_reason for r in mixed.records if not r.agree} == {"paper_sampled_out"}


def test_failing_shadow_never_breaks_primary(book: pl.DataFrame, make_ctx: Any) -> None:
    class Broken(BacktestExecutor):
        def submit(self, ctx: Any) -> ExecResult:
            raise ConnectionError("shadow down")

    sh = ShadowExecutor(BacktestExecutor(book, BacktestConfig()), Broken(book))
    r = sh.submit(make_ctx())
    assert r.status == "filled" and sh.records[0].shadow_status == "error" and sh.parity_ratio == 0.0


def test_failing_shadow_cancel_and_amend_are_recorded_like_submit(book: pl.DataFrame, make_ctx: Any) -> None:
    class Broken(BacktestExecutor):
        def cancel(self, symbol: str, client_order_id: str) -> Any:
            raise ConnectionError("shadow down")

        def amend(self, symbol: str, client_order_id: str, px: float | None = None, qty: float | None = None) -> Any:
            raise TimeoutError("shadow slow")

    primary = BacktestExecutor(book, BacktestConfig())
    sh = ShadowExecutor(primary, Broken(book))
    ctx = make_ctx()
    sh.submit(ctx)
    expected_cancel = BacktestExecutor(book, BacktestConfig()).cancel(ctx.symbol, "nope")
    c = sh.cancel(ctx.symbol, "nope")
    a = sh.amend(ctx.symbol, "nope", px=1.0)
    assert c.status == expected_cancel.status  # the primary's answer, whatever the shadow does
    assert a.client_order_id == "nope"
    cancel, amend = sh.records[-2:]
    assert (cancel.action, cancel.shadow_status, cancel.shadow_reason) == ("cancel", "error", "shadow_error:ConnectionError")
    assert (amend.action, amend.shadow_status, amend.shadow_reason) == ("amend", "error", "shadow_error:TimeoutError")
    assert not cancel.agree and not amend.agree
    assert sh.parity_ratio == pytest.approx(1 / 3)  # the submit agreed; both failed actions count against it
    assert sh.metrics.value("executor_shadow_parity_ratio") == pytest.approx(1 / 3)

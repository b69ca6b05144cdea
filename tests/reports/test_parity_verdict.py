"""One parity verdict: 0.25 % or worse fails wherever the sinks are judged."""

import pytest

from alpha_assets.monitoring.rules import alert_rules
from alpha_assets.reports.summary import parity_verdict
from alpha_assets.signal_contract import PARITY_LIMIT, parity_passed


@pytest.mark.parametrize(("rel", "passed"), [(0.0, True), (0.0024999, True), (PARITY_LIMIT, False), (0.01, False)])
def test_the_summary_verdict_is_the_gates_verdict(rel: float, passed: bool) -> None:
    assert parity_passed(rel) is passed
    assert parity_verdict({"max_rel_diff": rel}) is passed  # exactly 0.25 % used to pass here
    assert parity_verdict({"BTCUSDT": {"max_rel_diff": 0.0}, "ETHUSDT": {"max_rel_diff": rel}}) is passed


def test_a_zero_limit_demands_exact_agreement() -> None:
    assert parity_passed(0.0, limit=0.0) and not parity_passed(1e-12, limit=0.0)


def test_the_breach_alert_fires_at_the_same_limit() -> None:
    [rule] = [r for r in alert_rules() if r.name == "AlphaParityBreach"]
    assert f">= {PARITY_LIMIT:g}" in rule.expr

"""Grid alignment in Decimal: properties over random prices, sizes and grids."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from executors.rounding import align, align_order, slippage_bps

TICKS = st.sampled_from([0.1, 0.01, 0.001, 0.0001, 0.5, 1.0, 0.00001])
STEPS = st.sampled_from([0.001, 0.01, 0.1, 1.0, 0.0001])


def _on_grid(x: float, step: float) -> bool:
    return Decimal(repr(x)) % Decimal(repr(step)) == 0


@settings(max_examples=400, deadline=None)
@given(px=st.floats(0.0001, 200_000, allow_nan=False), qty=st.floats(0.0, 1_000, allow_nan=False),
       tick=TICKS, step=STEPS, side=st.sampled_from(["BUY", "SELL"]), aggressive=st.booleans())
def test_alignment_properties(px: float, qty: float, tick: float, step: float, side: str, aggressive: bool) -> None:
    a = align_order(side, px, qty, tick, step, aggressive)  # type: ignore[arg-type]
    assert _on_grid(a.px, tick) and _on_grid(a.qty, step)
    assert abs(a.px - px) < tick * (1 + 1e-9)
    assert a.qty <= qty + step * 1e-6  # never more than sized
    up = (side == "BUY") == aggressive
    slack = tick * 1e-6
    assert (a.px >= px - slack) if up else (a.px <= px + slack)
    exact = float(Decimal(repr(a.px)) - Decimal(repr(px)))
    # either a real rounding, reported exactly, or float noise snapped and reported as none
    assert a.rounding_diff == exact or (a.rounding_diff == 0.0 and abs(exact) <= tick * 1e-6)


def test_float_noise_is_not_a_rounding() -> None:
    a = align_order("BUY", 0.1 + 0.2, 0.1 + 0.2, 0.1, 0.1)
    assert a.px == 0.3 and a.qty == 0.3 and not a.rounding_applied and a.rounding_diff == 0.0
    assert align(43000.05, 0.1, "floor") == 43000.0 and align(43000.05, 0.1, "ceil") == 43000.1
    assert align(2.675, 0.01, "nearest") == 2.68  # Decimal of the shortest repr, not the binary 2.67499...


def test_slippage_sign() -> None:
    assert slippage_bps("BUY", 100.0, 100.1) > 0 and slippage_bps("SELL", 100.0, 100.1) < 0
    assert slippage_bps("SELL", 100.0, 99.9) == slippage_bps("BUY", 100.0, 100.1)

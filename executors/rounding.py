"""Price/quantity alignment to the exchange grid, in Decimal (floats drift: 0.1 + 0.2 != 0.3)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from executors.contract import Side


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def align(value: float, step: float, mode: str) -> float:
    """``value`` on the grid of ``step``: mode floor | ceil | nearest (half-even)."""
    rounding = {"floor": ROUND_FLOOR, "ceil": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}[mode]
    s = _dec(step)
    n = (_dec(value) / s).to_integral_value(rounding=rounding)
    return float(n * s)


@dataclass(frozen=True)
class Aligned:
    px: float
    qty: float
    rounding_applied: bool
    rounding_diff: float  # px - px_intent, price units


def align_order(side: Side, px: float, qty: float, tick: float, step: float, aggressive: bool = True) -> Aligned:
    """Align price and quantity. An aggressive (taker) order rounds its price through the book so it
    stays marketable (BUY up, SELL down); a passive one rounds away so it never crosses.
    Quantity always rounds down: never send more than was sized."""
    up = (side == "BUY") == aggressive
    # float noise (43000.100000000006 on a 0.1 grid) is snapped, not counted as a rounding;
    # anything further off the grid rounds in the side's direction
    px_moved, apx = _snap_or_round(px, tick, "ceil" if up else "floor")
    qty_moved, aqty = _snap_or_round(qty, step, "floor")
    diff = float(_dec(apx) - _dec(px)) if px_moved else 0.0
    return Aligned(px=apx, qty=aqty, rounding_applied=px_moved or qty_moved, rounding_diff=diff)


def _snap_or_round(x: float, step: float, mode: str) -> tuple[bool, float]:
    snapped = align(x, step, "nearest")
    if abs(_dec(snapped) - _dec(x)) <= _dec(step) * Decimal("1e-6"):
        return False, snapped
    return True, align(x, step, mode)


def slippage_bps(side: Side, px_intent: float, px: float) -> float:
    """Adverse price move in bps (positive = cost): BUY paid above intent, SELL got below."""
    sign = 1.0 if side == "BUY" else -1.0
    return sign * (px - px_intent) / px_intent * 1e4

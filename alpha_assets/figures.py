"""Figures rounded to what they mean, for metadata and logs (the stored data keeps full precision).

A ratio keeps 4 decimals, a relative difference 6 (the parity gate is 0.25 %, its target 0),
basis points 2, milliseconds 1, money 2, Sharpe 2; anything else 4 significant digits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, SupportsFloat, SupportsInt, cast

_RULES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("rel_diff", "diff_ratio"), 6),
    (("_frac", "ratio", "_rate", "share", "imbalance", "fraction"), 4),
    (("_bps",), 2),
    (("_ms", "ms_p", "latency"), 1),
    (("_mb",), 1),
    (("pnl", "fees", "drawdown", "turnover"), 2),
    (("sharpe",), 2),
    (("z_",), 3),
    (("_s", "minutes", "per_min", "per_second"), 2),
)


def round_figure(name: str, value: Any) -> Any:
    """`value` rounded for `name`; ints, bools, text and non-finite numbers pass through."""
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    for needles, digits in _RULES:
        if any(n in name for n in needles):
            return round(value, digits)
    if value == 0:
        return 0.0
    return round(value, max(0, 3 - int(math.floor(math.log10(abs(value))))))


def rounded(figures: Mapping[str, Any]) -> dict[str, Any]:
    return {k: round_figure(k, v) for k, v in figures.items()}


def num(value: object) -> float:
    """A polars aggregate (`Series.mean()`, `.max()`, …) as a float. Polars types those as any Python
    literal; on a numeric column they are numbers, and None (an empty column) fails as float(None) does."""
    return float(cast(SupportsFloat, value))


def whole(value: object) -> int:
    """`num` for integer columns."""
    return int(cast(SupportsInt, value))

"""The signals contract: what a signal row is and when the two sinks agree.

One owner for the Signals columns every sink stores (docs/interfaces.md), the signal types and
their sides, the row key, and the sink-parity limit with the one function that applies it. The
engine, the sinks, the executors, the reports, the monitoring rules and the CI gate import these.
"""

from __future__ import annotations

import polars as pl

# v13 fusion's five outcomes, in the order reports list them
SIGNAL_TYPES: tuple[str, ...] = ("neutral", "buy", "strong_buy", "sell", "strong_sell")
BUY_TYPES: tuple[str, ...] = ("buy", "strong_buy")
SELL_TYPES: tuple[str, ...] = ("sell", "strong_sell")
DIRECTIONAL_TYPES: tuple[str, ...] = (*BUY_TYPES, *SELL_TYPES)
STRONG_TYPES: tuple[str, ...] = ("strong_buy", "strong_sell")
ORDER_SIDE: dict[str, str] = {**dict.fromkeys(BUY_TYPES, "BUY"), **dict.fromkeys(SELL_TYPES, "SELL")}

SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Utf8(), "symbol": pl.Utf8(), "seq": pl.Int64(), "ts_ms": pl.Int64(),
    "signal_type": pl.Utf8(), "score": pl.Float64(), "consistency": pl.Float64(),
    "z_ofi": pl.Float64(), "z_cvd": pl.Float64(), "confirm": pl.Boolean(), "gating": pl.Boolean(),
    "decision_code": pl.Utf8(), "guard_reason": pl.Utf8(), "regime": pl.Utf8(), "div_type": pl.Utf8(),
    "warmup": pl.Boolean(), "price": pl.Float64(), "spread_bps": pl.Float64(), "created_at": pl.Int64(),
}
SIGNAL_COLUMNS: tuple[str, ...] = tuple(SIGNAL_SCHEMA)
KEY: tuple[str, ...] = ("run_id", "symbol", "seq")  # a row's identity in both sinks

# Sink parity: the largest relative difference between the JSONL and SQLite sinks (target 0).
# 0.25 % or worse blocks: the sink_parity check, the CI gate, the summary's verdict and the
# AlphaParityBreach alert all use this limit.
PARITY_LIMIT = 0.0025


def parity_passed(max_rel_diff: float, limit: float = PARITY_LIMIT) -> bool:
    """The parity verdict: below the limit passes, at it or above fails; exact agreement always
    passes (so a limit of 0 demands exact agreement)."""
    return max_rel_diff == 0.0 or max_rel_diff < limit

"""Figures users follow over time about a signals table (plain numbers, so the UI plots them)."""

from __future__ import annotations

import polars as pl

from alpha_assets.figures import num
from alpha_assets.signal_contract import SIGNAL_TYPES


def signal_figures(frame: pl.DataFrame) -> dict[str, float | int]:
    total = frame.height
    directional = frame.filter(pl.col("signal_type") != "neutral")
    n_dir = directional.height
    counts = {t: int((frame["signal_type"] == t).sum()) for t in SIGNAL_TYPES}
    return {
        "total": total,
        **{f"n_{t}": n for t, n in counts.items()},
        "directional": n_dir,
        "buy_ratio": (counts["buy"] + counts["strong_buy"]) / n_dir if n_dir else 0.0,
        "strong_ratio": (counts["strong_buy"] + counts["strong_sell"]) / n_dir if n_dir else 0.0,
        "confirm": int(frame["confirm"].sum()) if total else 0,
        "confirm_ratio": num(frame["confirm"].mean()) if total else 0.0,
        "gated": int(frame["gating"].sum()) if total else 0,
        "warmup_rows": int(frame["warmup"].sum()) if total else 0,
    }

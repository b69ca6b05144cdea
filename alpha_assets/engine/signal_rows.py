"""Signals rows from feature rows: dedup, regime, fusion and guards over one symbol's features
(`signals_step`, driven by explicit state like the features), and the text of guard reasons.
The decision_code vocabulary is documented in engine/pipeline.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from alpha_assets.engine.config import EngineConfig
from alpha_assets.engine.fusion import (
    SIGNALS,
    fusion_initial_state,
    fusion_params,
    label_series,
    reason_strings,
)
from alpha_assets.engine.guards import (
    DECISIONS,
    G_HOLD,
    G_LAG,
    G_MISSING,
    G_SPREAD,
    GUARD_REASONS,
    guard_initial_state,
    guard_params,
    signal_kernel,
)
from alpha_assets.engine.strategy_mode import REGIMES, market_initial_state, market_params, schedule_active
from alpha_assets.signal_contract import SIGNAL_SCHEMA


def kernel_outputs(n: int) -> dict[str, np.ndarray]:
    """The arrays `signal_kernel` fills for `n` rows, in the order it takes them (batch and stream alike)."""
    return {
        "score": np.empty(n), "sig": np.empty(n, dtype=np.int64), "cons": np.empty(n),
        "reasons": np.empty(n, dtype=np.int64), "fwarm": np.empty(n, dtype=np.bool_),
        "regime": np.empty(n, dtype=np.int64), "market": np.empty(n, dtype=np.bool_),
        "confirm": np.empty(n, dtype=np.bool_), "gating": np.empty(n, dtype=np.bool_),
        "guard": np.empty(n, dtype=np.int64), "gval": np.empty(n), "decision": np.empty(n, dtype=np.int64),
        "warm": np.empty(n, dtype=np.bool_), "thr": np.empty(n), "cand": np.empty(n, dtype=np.bool_),
    }


def signals_initial_state(cfg: EngineConfig) -> dict[str, Any]:
    g = guard_initial_state()
    f = fusion_initial_state()
    m = market_initial_state(cfg.strategy)
    return {"g": g, "fus": f, "mkt": m}


def _arr(frame: pl.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in frame.columns:
        return np.full(frame.height, default, dtype=np.float64)
    s = frame.get_column(name).cast(pl.Float64, strict=False).fill_null(default).fill_nan(default)
    return s.to_numpy().astype(np.float64, copy=False)


def _barr(frame: pl.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(frame.height, dtype=np.bool_)
    return frame.get_column(name).cast(pl.Boolean, strict=False).fill_null(False).to_numpy().astype(np.bool_, copy=False)


def signals_step(st: dict[str, Any], feats: pl.DataFrame, cfg: EngineConfig, run_id: str,
                 detail: bool = False) -> pl.DataFrame:
    """Run dedup/regime/fusion/guards over feature rows of one symbol (reads only `SIGNAL_INPUTS`)."""
    n = feats.height
    ts = feats.get_column("event_time_ms").cast(pl.Int64, strict=False)
    ts_null = ts.is_null().to_numpy()
    ts_v = ts.fill_null(0).to_numpy().astype(np.int64, copy=False)
    z_ofi = _arr(feats, "z_ofi", np.nan)
    z_cvd = _arr(feats, "z_cvd", np.nan)
    lag = _arr(feats, "lag_ms", 0.0) / 1000.0 if cfg.fusion.pass_lag else np.zeros(n)
    ev_lag = np.maximum(0.0, _arr(feats, "event_lag_ms", np.nan) / 1000.0)
    accepted = _barr(feats, "cvd_accepted") if "cvd_accepted" in feats.columns else np.ones(n, dtype=np.bool_)
    g, fu, m = st["g"], st["fus"], st["mkt"]
    o = kernel_outputs(n)
    sched = schedule_active(ts, cfg.strategy)
    signal_kernel(
        g["gi"], g["gf"], guard_params(cfg.guards), fu["i"], fu["f"], fusion_params(cfg.fusion),
        m["mi"], m["mt"], m["mtr"], m["msp"], m["mvo"], m["str"], m["ssp"], m["svo"], market_params(cfg.strategy),
        ts_v, ts_null, z_ofi, z_cvd, lag, _arr(feats, "spread_bps", np.nan), _arr(feats, "trade_rate_per_min", 0.0),
        _arr(feats, "realized_vol", np.nan) * 1e4, sched, _arr(feats, "missing_msgs_rate", 0.0),
        _barr(feats, "resync"), _barr(feats, "reconnect"), ev_lag, ~accepted | ts_null,
        *o.values(),
    )
    cols = [
        pl.lit(run_id, dtype=pl.Utf8).alias("run_id"),
        pl.col("symbol"),
        pl.col("agg_trade_id").cast(pl.Int64).alias("seq"),
        ts.alias("ts_ms"),
        label_series("signal_type", o["sig"], SIGNALS),
        pl.Series("score", o["score"]).fill_nan(None),
        pl.Series("consistency", o["cons"]).fill_nan(None),
        pl.col("z_ofi").cast(pl.Float64),
        pl.col("z_cvd").cast(pl.Float64),
        pl.Series("confirm", o["confirm"]),
        pl.Series("gating", o["gating"]),
        label_series("decision_code", o["decision"], DECISIONS),
        guard_reason_series(o["guard"], o["gval"], cfg),
        label_series("regime", o["regime"], REGIMES),
        pl.lit("none", dtype=pl.Utf8).alias("div_type"),
        pl.Series("warmup", o["warm"] | o["fwarm"]),
        pl.col("price").cast(pl.Float64) if "price" in feats.columns else pl.lit(None, pl.Float64).alias("price"),
        pl.col("spread_bps").cast(pl.Float64) if "spread_bps" in feats.columns
        else pl.lit(None, pl.Float64).alias("spread_bps"),
        pl.col("recv_time_ms").cast(pl.Int64).alias("created_at") if "recv_time_ms" in feats.columns
        else pl.lit(None, pl.Int64).alias("created_at"),
    ]
    if detail:
        cols += [
            pl.Series("fusion_reason_codes", reason_strings(o["reasons"]), dtype=pl.Utf8),
            pl.Series("fusion_warmup", o["fwarm"]),
            pl.Series("confirm_threshold", o["thr"]).fill_nan(None),
            pl.Series("candidate_confirm", o["cand"]),
            pl.Series("market_active", o["market"]),
            pl.Series("schedule_active", sched),
            pl.Series("warmup_active", o["warm"]),
        ]
    if n == 0:
        return pl.DataFrame(schema=signal_schema(detail))
    return feats.select(cols)


def signal_schema(detail: bool) -> dict[str, Any]:
    """The Signals columns (alpha_assets.signal_contract); `detail` adds the engine's diagnostics."""
    schema: dict[str, Any] = dict(SIGNAL_SCHEMA)
    if detail:
        schema.update({"fusion_reason_codes": pl.Utf8, "fusion_warmup": pl.Boolean, "confirm_threshold": pl.Float64,
                       "candidate_confirm": pl.Boolean, "market_active": pl.Boolean,
                       "schedule_active": pl.Boolean, "warmup_active": pl.Boolean})
    return schema


def _hold_text(hold: float) -> str:
    return str(int(hold)) if float(hold).is_integer() else repr(float(hold))


FORMATTED_GUARDS = (G_SPREAD, G_MISSING, G_LAG)  # reasons whose text carries the measured value


def guard_labels(cfg: EngineConfig) -> list[str]:
    """Text of each guard code ("" for none); the FORMATTED_GUARDS entries come from `guard_text`."""
    labels = list(GUARD_REASONS)
    labels[0] = ""
    labels[G_HOLD] = f"insufficient_hold_time_{_hold_text(cfg.guards.min_hold_time_sec)}s"
    return labels


def guard_text(code: int, value: float) -> str:
    """v13's text of a guard that reports its value."""
    if code == G_SPREAD:
        return f"spread_too_high_{value:.1f}bps"
    if code == G_MISSING:
        return f"missing_msgs_rate_{value:.4f}"
    return f"lag_exceeded_{value:.2f}s"


def guard_reason_series(codes: np.ndarray, vals: np.ndarray, cfg: EngineConfig) -> pl.Series:
    """Guard codes -> v13 reason strings (null when none); values formatted as v13 did."""
    s = label_series("guard_reason", codes, guard_labels(cfg))
    fmt_rows = np.flatnonzero(np.isin(codes, FORMATTED_GUARDS))
    if fmt_rows.size:
        cache: dict[tuple[int, float], str] = {}
        texts = []
        for i in fmt_rows.tolist():
            key = (int(codes[i]), float(vals[i]))
            txt = cache.get(key)
            if txt is None:
                txt = cache[key] = guard_text(*key)
            texts.append(txt)
        s = s.scatter(fmt_rows, pl.Series(texts, dtype=pl.Utf8))
    return s.replace("", None)

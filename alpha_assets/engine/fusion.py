"""Fusion of z_ofi and z_cvd with the v13 denoise state machine (ALGORITHMS.md §3)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from alpha_assets.engine.config import EngineConfig, FusionConfig, resolve_config

SIGNALS = ["neutral", "buy", "strong_buy", "sell", "strong_sell"]
NEUTRAL, BUY, STRONG_BUY, SELL, STRONG_SELL = range(5)
# reason codes as bits, in v13 emission order
REASONS = [
    "invalid_input", "warmup", "lag_exceeded", "degraded_ofi_only", "degraded_cvd_only", "flip_rearm",
    "cooldown", "hysteresis_hold", "consistency_boost", "low_consistency_throttle", "min_duration",
]
R_INVALID, R_WARMUP, R_LAG, R_DEG_OFI, R_DEG_CVD, R_REARM, R_COOLDOWN, R_HYST, R_BOOST, R_THROTTLE, R_MINDUR = (
    1 << i for i in range(11)
)

# int state: warm-up count, warm-up done, L, has E, streak, previous raw (-1 none), last raw dir
J_C, J_DONE, J_L, J_HAS_E, J_S, J_P, J_D = range(7)
# float state: E
G_E = 0

(P_WO, P_WC, P_BUY, P_SBUY, P_SELL, P_SSELL, P_MINC, P_SMINC, P_ZCLIP, P_MAXLAG, P_WARM, P_HYST, P_COOL,
 P_MINCONSEC, P_REARM, P_MARGIN, P_ADAPT, P_K, P_MINSECS, P_EPS, P_BOOSTC, P_THROTC, P_BOOSTF) = range(23)


def fusion_initial_state() -> dict[str, np.ndarray]:
    i = np.zeros(7, dtype=np.int64)
    i[J_P] = -1
    return {"i": i, "f": np.zeros(1, dtype=np.float64)}


def fusion_params(cfg: FusionConfig) -> np.ndarray:
    tot = cfg.w_ofi + cfg.w_cvd
    return np.array([
        cfg.w_ofi / tot, cfg.w_cvd / tot, cfg.fuse_buy, cfg.fuse_strong_buy, cfg.fuse_sell, cfg.fuse_strong_sell,
        cfg.min_consistency, cfg.strong_min_consistency, cfg.z_clip, cfg.max_lag, cfg.min_warmup_samples,
        cfg.hysteresis_exit, cfg.cooldown_secs, cfg.min_consecutive, 1.0 if cfg.rearm_on_flip else 0.0,
        cfg.flip_rearm_margin, 1.0 if cfg.adaptive_cooldown_enabled else 0.0, cfg.adaptive_cooldown_k,
        cfg.adaptive_cooldown_min_secs, cfg.consistency_eps, cfg.boost_consistency, cfg.throttle_consistency,
        cfg.boost_threshold_factor,
    ], dtype=np.float64)


@njit(cache=True, error_model="numpy", inline="always")
def _dir(sig: int) -> int:
    if sig == BUY or sig == STRONG_BUY:
        return 1
    if sig == SELL or sig == STRONG_SELL:
        return -1
    return 0


@njit(cache=True, error_model="numpy", inline="always")
def fusion_row(fi: np.ndarray, ff: np.ndarray, p: np.ndarray, z_ofi: float, z_cvd: float, ts: float,
               lag: float) -> tuple[float, int, float, float, float, int, bool, int, int]:
    """One fuser update. z values are NaN when null. Returns
    (score, signal, consistency, w_ofi, w_cvd, reasons, warmup, streak (-1 null), last (-1 null))."""
    if not (math.isfinite(z_ofi) and math.isfinite(z_cvd)):
        return 0.0, NEUTRAL, 0.0, p[P_WO], p[P_WC], R_INVALID, fi[J_DONE] == 0, -1, -1
    if fi[J_C] < p[P_WARM]:
        fi[J_C] += 1
        return 0.0, NEUTRAL, 0.0, p[P_WO], p[P_WC], R_WARMUP, True, -1, -1
    fi[J_DONE] = 1
    zc_ = p[P_ZCLIP]
    zo = min(max(z_ofi, -zc_), zc_)
    zc = min(max(z_cvd, -zc_), zc_)
    reasons = 0
    wo = p[P_WO]
    wc = p[P_WC]
    degraded = False
    if lag > p[P_MAXLAG]:
        reasons |= R_LAG
        degraded = True
        if abs(zo) >= abs(zc):
            wo = 1.0
            wc = 0.0
            reasons |= R_DEG_OFI
        else:
            wo = 0.0
            wc = 1.0
            reasons |= R_DEG_CVD
    score = wo * zo + wc * zc
    eps = p[P_EPS]
    if abs(zo) < eps or abs(zc) < eps:
        cons = 0.0
    elif math.copysign(1.0, zo) != math.copysign(1.0, zc):
        cons = 0.0
    else:
        cons = min(abs(zo), abs(zc)) / max(abs(zo), abs(zc))
    if degraded:
        cons = 1.0
    if score > p[P_SBUY] and cons > p[P_SMINC]:
        raw = STRONG_BUY
    elif score > p[P_BUY] and cons > p[P_MINC]:
        raw = BUY
    elif score < p[P_SSELL] and cons > p[P_SMINC]:
        raw = STRONG_SELL
    elif score < p[P_SELL] and cons > p[P_MINC]:
        raw = SELL
    else:
        raw = NEUTRAL
    # streak
    if raw != NEUTRAL:
        if fi[J_P] == raw:
            fi[J_S] += 1
        else:
            fi[J_S] = 1
    else:
        fi[J_S] = 0
    fi[J_P] = raw
    draw = _dir(raw)
    blocked = False
    if fi[J_HAS_E] == 1 and ff[G_E] != 0.0:
        el = ts - ff[G_E]
        eff = p[P_COOL]
        fb = abs(p[P_BUY])
        if p[P_ADAPT] > 0 and el < p[P_COOL]:
            if abs(score) < fb:
                strength = 0.0
            else:
                strength = min(1.0, (abs(score) - fb) / (abs(p[P_SBUY]) - fb))
            eff = max(p[P_MINSECS], p[P_COOL] * (1.0 - p[P_K] * strength))
        rearmed = False
        if p[P_REARM] > 0 and draw != 0 and fi[J_D] != 0 and draw != fi[J_D] and abs(score) >= fb * (1.0 + p[P_MARGIN]):
            reasons |= R_REARM
            rearmed = True
        if not rearmed and el < eff and raw != NEUTRAL:
            blocked = True
            reasons |= R_COOLDOWN
    sig = NEUTRAL
    if not blocked:
        if raw != NEUTRAL:
            fi[J_D] = draw
        h = p[P_HYST] + 0.5 * max(0.0, cons - 0.3)
        sig = raw
        last = fi[J_L]
        if last == STRONG_BUY and sig == BUY and score > h:
            sig = STRONG_BUY
            reasons |= R_HYST
        elif last == STRONG_SELL and sig == SELL and score < -h:
            sig = STRONG_SELL
            reasons |= R_HYST
        elif (last == BUY or last == STRONG_BUY) and sig == NEUTRAL and score > h:
            sig = last
            reasons |= R_HYST
        elif (last == SELL or last == STRONG_SELL) and sig == NEUTRAL and score < -h:
            sig = last
            reasons |= R_HYST
        boosted = False
        if cons > p[P_BOOSTC] and sig == NEUTRAL:
            if score > p[P_BUY] * p[P_BOOSTF]:
                sig = BUY
                reasons |= R_BOOST
                boosted = True
            elif score < p[P_SELL] * p[P_BOOSTF]:
                sig = SELL
                reasons |= R_BOOST
                boosted = True
        elif cons < p[P_THROTC] and sig != NEUTRAL:
            sig = NEUTRAL
            reasons |= R_THROTTLE
        if sig != NEUTRAL and fi[J_S] < p[P_MINCONSEC] and not boosted:
            sig = NEUTRAL
            reasons |= R_MINDUR
    if sig != NEUTRAL:
        ff[G_E] = ts
        fi[J_HAS_E] = 1
        fi[J_L] = sig
    return score, sig, cons, wo, wc, reasons, False, fi[J_S], fi[J_L]


@njit(cache=True, error_model="numpy")
def fusion_kernel(fi: np.ndarray, ff: np.ndarray, p: np.ndarray, z_ofi: np.ndarray, z_cvd: np.ndarray,
                  ts: np.ndarray, lag: np.ndarray, o_score: np.ndarray, o_sig: np.ndarray, o_cons: np.ndarray,
                  o_wo: np.ndarray, o_wc: np.ndarray, o_reasons: np.ndarray, o_warm: np.ndarray,
                  o_streak: np.ndarray, o_last: np.ndarray) -> None:
    for r in range(ts.shape[0]):
        res = fusion_row(fi, ff, p, z_ofi[r], z_cvd[r], ts[r], lag[r])
        o_score[r] = res[0]
        o_sig[r] = res[1]
        o_cons[r] = res[2]
        o_wo[r] = res[3]
        o_wc[r] = res[4]
        o_reasons[r] = res[5]
        o_warm[r] = res[6]
        o_streak[r] = res[7]
        o_last[r] = res[8]


def reason_strings(masks: np.ndarray) -> list[str]:
    """Bit masks -> comma-joined reason codes (emission order), cached per distinct mask."""
    cache: dict[int, str] = {}
    out = []
    for m in masks.tolist():
        s = cache.get(m)
        if s is None:
            s = ",".join(name for i, name in enumerate(REASONS) if m & (1 << i))
            cache[m] = s
        out.append(s)
    return out


def reason_lists(masks: np.ndarray) -> pl.Series:
    """Bit masks -> List[Utf8] column, built once per distinct mask and joined back (vectorised)."""
    m = pl.DataFrame({"m": masks.astype(np.int64)})
    uniq = m.get_column("m").unique().sort()
    lists = [[name for i, name in enumerate(REASONS) if v & (1 << i)] for v in uniq.to_list()]
    table = pl.DataFrame({"m": uniq, "fusion_reason_codes": pl.Series(lists, dtype=pl.List(pl.Utf8))})
    return m.join(table, on="m", how="left", maintain_order="left").get_column("fusion_reason_codes")


def label_series(name: str, codes: np.ndarray, labels: list[str]) -> pl.Series:
    """Integer codes (-1 = null) -> Utf8 labels, by a gather from the small label list."""
    idx = pl.Series(name, codes, dtype=pl.Int64)
    if (codes < 0).any():
        idx = pl.select(pl.when(idx >= 0).then(idx)).to_series()
    return pl.Series(name, labels, dtype=pl.Utf8).gather(idx)


def fusion_run(state: dict[str, np.ndarray], frame: pl.DataFrame, cfg: FusionConfig) -> pl.DataFrame:
    n = frame.height

    def col(name: str, default: float) -> np.ndarray:
        if name not in frame.columns:
            return np.full(n, default)
        return frame.get_column(name).cast(pl.Float64, strict=False).fill_null(default).to_numpy().astype(np.float64, copy=False)

    z_ofi = col("z_ofi", np.nan)
    z_cvd = col("z_cvd", np.nan)
    ts_ms = frame.get_column("ts_ms").cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    ts = ts_ms / 1000.0
    lag = col("lag_sec", 0.0)
    lag = np.where(np.isfinite(lag), lag, 0.0)
    o: dict[str, Any] = {
        "score": np.empty(n), "sig": np.empty(n, dtype=np.int64), "cons": np.empty(n), "wo": np.empty(n),
        "wc": np.empty(n), "reasons": np.empty(n, dtype=np.int64), "warm": np.empty(n, dtype=np.bool_),
        "streak": np.empty(n, dtype=np.int64), "last": np.empty(n, dtype=np.int64),
    }
    fusion_kernel(state["i"], state["f"], fusion_params(cfg), z_ofi, z_cvd, ts, lag, *o.values())
    masks = o["reasons"]
    return pl.DataFrame([
        pl.Series("fusion_score", o["score"]),
        label_series("fusion_signal", o["sig"], SIGNALS),
        pl.Series("fusion_consistency", o["cons"]),
        pl.Series("fusion_ofi_weight", o["wo"]),
        pl.Series("fusion_cvd_weight", o["wc"]),
        pl.Series("fusion_warmup", o["warm"]),
        reason_lists(masks),
        pl.Series("fusion_streak", o["streak"]).replace(-1, None),
        label_series("fusion_last_signal", o["last"], SIGNALS),
    ])


def fuse(frame: pl.DataFrame, cfg: EngineConfig | dict | None = None) -> pl.DataFrame:
    """Fusion over rows in the order given (one fuser): input ts_ms, z_ofi, z_cvd, lag_sec
    (z may be null; lag_sec missing = 0.0). Output: the input columns then §3.6 columns,
    `fusion_reason_codes` as a list of strings."""
    c = resolve_config(cfg, prefer="fusion").fusion
    res = fusion_run(fusion_initial_state(), frame, c)
    keep = [x for x in ("ts_ms", "z_ofi", "z_cvd", "lag_sec") if x in frame.columns]
    return pl.concat([frame.select(keep), res], how="horizontal")

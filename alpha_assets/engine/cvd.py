"""CVD: cumulative volume delta and its delta z-score (ALGORITHMS.md §2), v13-faithful.

One compiled loop per symbol stream over an explicit state: time-decayed scale EWMAs,
the rolling MAD floor (recomputed on every accepted trade, the deterministic rule of §2.7),
the 60-second trade-rate window and the freeze after gaps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from alpha_assets.engine.config import CVDConfig, EngineConfig, resolve_config
from alpha_assets.engine.ofi import _ensure_symbol, _reassemble, _symbol_groups, time_arrays
from alpha_assets.engine.windows import sorted_mad, sorted_median, window_push

LN2 = math.log(2.0)
LN_HALF = math.log(0.5)

# float state
F_CVD, F_EMA, F_LAST_PRICE, F_FAST, F_SLOW, F_LAST_TS = range(6)
# int state
(I_HAS_EMA, I_N, I_BAD, I_HAS_LAST_PRICE, I_LAST_SIDE, I_TICK_RUN, I_HAS_LAST_T, I_LAST_T,
 I_HAS_PREV_T, I_PREV_T, I_HAS_LAST_TS, I_FREEZE, I_BN, I_BHEAD, I_RHEAD, I_RN, I_HN, I_HHEAD) = range(18)


def cvd_initial_state(cfg: CVDConfig) -> dict[str, np.ndarray]:
    mw = cfg.mad_window_trades
    return {
        "f": np.zeros(6, dtype=np.float64),
        "i": np.zeros(18, dtype=np.int64),
        "b": np.zeros(mw, dtype=np.float64),
        "bsorted": np.zeros(mw + 1, dtype=np.float64),
        "r": np.zeros(256, dtype=np.float64),
        "h": np.zeros(cfg.z_window, dtype=np.float64),
    }


@njit(cache=True, error_model="numpy", inline="always")
def _r_append(rbuf: np.ndarray, ist: np.ndarray, x: float) -> np.ndarray:
    cap = rbuf.shape[0]
    n = ist[I_RN]
    head = ist[I_RHEAD]
    if n == cap:
        grown = np.empty(cap * 2, dtype=np.float64)
        for j in range(n):
            grown[j] = rbuf[(head + j) % cap]
        rbuf = grown
        cap = cap * 2
        head = 0
        ist[I_RHEAD] = 0
    rbuf[(head + n) % cap] = x
    ist[I_RN] = n + 1
    return rbuf


@njit(cache=True, error_model="numpy")
def cvd_kernel(fs: np.ndarray, ist: np.ndarray, bbuf: np.ndarray, bs: np.ndarray, rbuf: np.ndarray,
               hbuf: np.ndarray,
               price: np.ndarray, pn: np.ndarray, qty: np.ndarray, is_buy: np.ndarray,
               t: np.ndarray, tn: np.ndarray,
               level_mode: bool, alpha: float, use_tick_rule: bool, freeze_min: int, ewma_scale: bool,
               a_slow_n: float, a_fast_n: float, mad_min: int, mad_factor: float,
               wf: float, r_ref: float, gamma: float, beta: float, winsor: float, mad_mult: float,
               soft_ms: int, hard_ms: int, tau_fast: float, tau_slow: float, tps_window: float,
               scale_floor: float, tick_run_max: int, tick_max_age: int, level_thr: int,
               o_acc: np.ndarray, o_seq: np.ndarray, o_delta: np.ndarray, o_cvd: np.ndarray,
               o_ema: np.ndarray, o_z: np.ndarray, o_zraw: np.ndarray, o_scale: np.ndarray,
               o_fast: np.ndarray, o_slow: np.ndarray, o_mad: np.ndarray, o_tps: np.ndarray,
               o_frozen: np.ndarray, o_warm: np.ndarray, o_stdz: np.ndarray, o_bad: np.ndarray
               ) -> np.ndarray:
    mw = bbuf.shape[0]
    hw = hbuf.shape[0]
    one_m_alpha = 1.0 - alpha
    last_tps = -1.0
    last_boost = 1.0
    for r in range(qty.shape[0]):
        q = qty[r]
        side = -1
        ok = math.isfinite(q) and q > 0.0
        if ok:
            side = is_buy[r]
            if side < 0 and use_tick_rule and not pn[r]:
                p = price[r]
                if ist[I_HAS_LAST_PRICE] == 0:
                    ist[I_TICK_RUN] = 0
                elif p > fs[F_LAST_PRICE]:
                    side = 1
                    ist[I_TICK_RUN] = 0
                elif p < fs[F_LAST_PRICE]:
                    side = 0
                    ist[I_TICK_RUN] = 0
                else:
                    ist[I_TICK_RUN] += 1
                    too_late = ((not tn[r]) and t[r] != 0 and ist[I_HAS_LAST_T] == 1
                                and t[r] - ist[I_LAST_T] > tick_max_age)
                    if ist[I_TICK_RUN] <= tick_run_max and not too_late:
                        side = ist[I_LAST_SIDE]
                    else:
                        side = -1
                        ist[I_TICK_RUN] = 0
            ok = side >= 0
        o_frozen[r] = False
        o_zraw[r] = np.nan
        o_scale[r] = np.nan
        o_mad[r] = np.nan
        o_tps[r] = np.nan
        if not ok:
            ist[I_BAD] += 1
            o_acc[r] = False
            o_seq[r] = ist[I_N]
            o_delta[r] = np.nan
            o_cvd[r] = fs[F_CVD]
            o_ema[r] = fs[F_EMA] if ist[I_HAS_EMA] == 1 else np.nan
            o_z[r] = np.nan
            o_fast[r] = fs[F_FAST]
            o_slow[r] = fs[F_SLOW]
            o_warm[r] = True
            o_stdz[r] = False
            o_bad[r] = ist[I_BAD]
            continue
        d = q if side == 1 else -q
        fs[F_CVD] = fs[F_CVD] + d
        ist[I_N] += 1
        n = ist[I_N]
        if ist[I_HAS_EMA] == 0:
            fs[F_EMA] = fs[F_CVD]
            ist[I_HAS_EMA] = 1
        else:
            fs[F_EMA] = alpha * fs[F_CVD] + one_m_alpha * fs[F_EMA]
        if not pn[r] and math.isfinite(price[r]):
            fs[F_LAST_PRICE] = price[r]
            ist[I_HAS_LAST_PRICE] = 1
        if not tn[r]:
            ist[I_HAS_PREV_T] = ist[I_HAS_LAST_T]
            ist[I_PREV_T] = ist[I_LAST_T]
            ist[I_LAST_T] = t[r]
            ist[I_HAS_LAST_T] = 1
        ist[I_LAST_SIDE] = side
        o_acc[r] = True
        o_seq[r] = n
        o_delta[r] = d
        o_cvd[r] = fs[F_CVD]
        o_ema[r] = fs[F_EMA]
        o_bad[r] = ist[I_BAD]
        z = np.nan
        warm = False
        stdz = False
        if level_mode:
            hn = ist[I_HN]
            hh = ist[I_HHEAD]
            hbuf[hh] = fs[F_CVD]
            ist[I_HHEAD] = (hh + 1) % hw
            if hn < hw:
                hn += 1
                ist[I_HN] = hn
            k = hn - 1
            if k < level_thr:
                warm = True
            else:
                start = (ist[I_HHEAD] - hn) % hw
                sx = 0.0
                sxx = 0.0
                for j in range(k):
                    x = hbuf[(start + j) % hw]
                    sx += x
                    sxx += x * x
                mean = sx / k
                var = max(0.0, sxx / k - mean * mean)
                sd = math.sqrt(var)
                if sd <= 1e-9:
                    z = 0.0
                    stdz = True
                else:
                    z = (fs[F_CVD] - mean) / sd
            o_fast[r] = fs[F_FAST]
            o_slow[r] = fs[F_SLOW]
            o_z[r] = z
            o_warm[r] = warm
            o_stdz[r] = stdz
            continue
        a = abs(d)
        ts_ok = ist[I_HAS_LAST_T] == 1 and ist[I_LAST_T] != 0
        ts = ist[I_LAST_T] / 1000.0
        if n == 1:
            fs[F_FAST] = a
            fs[F_SLOW] = a
            if ts_ok:
                fs[F_LAST_TS] = ts
                ist[I_HAS_LAST_TS] = 1
        elif ts_ok and ist[I_HAS_LAST_TS] == 1 and fs[F_LAST_TS] != 0.0:
            dt = max(0.001, ts - fs[F_LAST_TS])
            af = 1.0 - math.exp(-LN2 * dt / tau_fast)
            a_s = 1.0 - math.exp(-LN2 * dt / tau_slow)
            fs[F_FAST] = (1.0 - af) * fs[F_FAST] + af * a
            fs[F_SLOW] = (1.0 - a_s) * fs[F_SLOW] + a_s * a
            fs[F_LAST_TS] = ts
        else:
            fs[F_SLOW] = a_slow_n * a + (1.0 - a_slow_n) * fs[F_SLOW]
            fs[F_FAST] = a_fast_n * a + (1.0 - a_fast_n) * fs[F_FAST]
        o_fast[r] = fs[F_FAST]
        o_slow[r] = fs[F_SLOW]
        # MAD buffer (signed deltas, newest mw)
        bn, ist[I_BHEAD] = window_push(bbuf, bs, ist[I_BN], ist[I_BHEAD], mw, d)
        ist[I_BN] = bn
        # trade-rate window, pruned from the front only
        if ts_ok:
            rbuf = _r_append(rbuf, ist, ts)
            cap = rbuf.shape[0]
            while ist[I_RN] > 0 and ts - rbuf[ist[I_RHEAD]] > tps_window:
                ist[I_RHEAD] = (ist[I_RHEAD] + 1) % cap
                ist[I_RN] -= 1
        cap = rbuf.shape[0]
        rn = ist[I_RN]
        if rn >= 2:
            first = rbuf[ist[I_RHEAD]]
            last = rbuf[(ist[I_RHEAD] + rn - 1) % cap]
            tps = rn / max(tps_window, last - first)
        else:
            tps = 0.0
        o_tps[r] = tps
        if n < freeze_min:
            o_z[r] = np.nan
            o_warm[r] = True
            o_stdz[r] = False
            continue
        if ewma_scale:
            mad_sigma = 0.0
            scale = max(fs[F_SLOW], scale_floor)
        else:
            ratio = tps / r_ref
            wf_eff = wf * min(1.0, ratio if beta == 1.0 else ratio ** beta)
            ws_eff = 1.0 - wf_eff
            mix = wf_eff * fs[F_FAST] + ws_eff * fs[F_SLOW]
            if bn >= mad_min:
                med = sorted_median(bs, bn)
                mad_sigma = mad_factor * sorted_mad(bs, bn, med)
            else:
                mad_sigma = 0.0
            if tps != last_tps:  # tps only moves when the window count does: reuse the power
                last_tps = tps
                last_boost = max(1.0, (r_ref / max(tps, 0.2)) ** gamma)
            boost = last_boost
            floor = (mad_sigma * mad_mult) * boost
            scale = max(mix, floor, scale_floor)
        o_mad[r] = mad_sigma
        o_scale[r] = scale
        if scale <= scale_floor:
            o_z[r] = np.nan
            o_warm[r] = False
            o_stdz[r] = True
            continue
        can_gap = ist[I_HAS_LAST_T] == 1 and ist[I_HAS_PREV_T] == 1 and n > 1
        gap = ist[I_LAST_T] - ist[I_PREV_T]
        frozen = True
        if can_gap and gap > hard_ms:
            ist[I_FREEZE] = 2
        elif can_gap and gap > soft_ms:
            ist[I_FREEZE] = 1
        elif ist[I_FREEZE] > 0:
            ist[I_FREEZE] -= 1
        else:
            frozen = False
        o_warm[r] = False
        o_stdz[r] = False
        if frozen:
            o_frozen[r] = True
            o_z[r] = np.nan
            continue
        zr = d / scale
        o_zraw[r] = zr
        o_z[r] = max(min(zr, winsor), -winsor)
    return rbuf


CVD_COLUMNS = [
    "cvd_accepted", "cvd_trade_seq", "cvd_delta", "cvd", "ema_cvd", "z_cvd", "cvd_z_raw", "cvd_scale",
    "cvd_ewma_fast", "cvd_ewma_slow", "cvd_mad_sigma", "cvd_tps", "cvd_frozen", "cvd_warmup",
    "cvd_std_zero", "cvd_bad_points",
]


def side_array(trades: pl.DataFrame) -> np.ndarray:
    """is_buy as int8: 1 buy, 0 sell, -1 unknown (tabular is_buyer_maker => is_buy = not maker)."""
    if "is_buyer_maker" not in trades.columns:
        return np.full(trades.height, -1, dtype=np.int8)
    s = trades.get_column("is_buyer_maker").cast(pl.Boolean, strict=False)
    out = (~s).cast(pl.Int8).fill_null(-1).to_numpy()
    return np.ascontiguousarray(out.astype(np.int8))


def float_array(frame: pl.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    if column not in frame.columns:
        return np.full(frame.height, np.nan), np.ones(frame.height, dtype=np.bool_)
    s = frame.get_column(column).cast(pl.Float64, strict=False)
    return s.fill_null(np.nan).to_numpy().astype(np.float64, copy=False), s.is_null().to_numpy()


def cvd_params(cfg: CVDConfig, symbol: str) -> tuple[Any, ...]:
    """The configuration arguments of `cvd_kernel`, in its order (after the input arrays)."""
    winsor, mad_mult = cfg.for_symbol(symbol)
    wf, _ws = cfg.scale_weights()
    a_slow_n = 1.0 - math.exp(LN_HALF / max(1, cfg.half_life_trades))
    a_fast_n = 1.0 - math.exp(LN_HALF / max(1, cfg.ewma_fast_hl))
    level_thr = max(1, max(cfg.z_window // 5, cfg.warmup_min))
    return (cfg.z_mode == "level", cfg.ema_alpha, cfg.use_tick_rule, cfg.freeze_min, cfg.scale_mode == "ewma",
            a_slow_n, a_fast_n, cfg.mad_min_samples(), cfg.mad_scale_factor,
            wf, cfg.r_ref, cfg.gamma, cfg.beta, winsor, mad_mult,
            cfg.soft_freeze_ms, cfg.hard_freeze_ms, cfg.tau_fast_s, cfg.tau_slow_s, cfg.tps_window_s,
            cfg.scale_floor, cfg.tick_run_max, cfg.tick_max_age_ms, level_thr)


def cvd_run(state: dict[str, np.ndarray], trades: pl.DataFrame, cfg: CVDConfig, symbol: str) -> pl.DataFrame:
    """Advance a CVD state over trades (one symbol, presentation order); returns CVD columns."""
    price, pn = float_array(trades, "price")
    qty, _ = float_array(trades, "qty")
    t, tn = time_arrays(trades)
    n = trades.height
    out: dict[str, Any] = {
        "cvd_accepted": np.empty(n, dtype=np.bool_), "cvd_trade_seq": np.empty(n, dtype=np.int64),
        "cvd_delta": np.empty(n), "cvd": np.empty(n), "ema_cvd": np.empty(n), "z_cvd": np.empty(n),
        "cvd_z_raw": np.empty(n), "cvd_scale": np.empty(n), "cvd_ewma_fast": np.empty(n),
        "cvd_ewma_slow": np.empty(n), "cvd_mad_sigma": np.empty(n), "cvd_tps": np.empty(n),
        "cvd_frozen": np.empty(n, dtype=np.bool_), "cvd_warmup": np.empty(n, dtype=np.bool_),
        "cvd_std_zero": np.empty(n, dtype=np.bool_), "cvd_bad_points": np.empty(n, dtype=np.int64),
    }
    state["r"] = cvd_kernel(
        state["f"], state["i"], state["b"], state["bsorted"], state["r"], state["h"],
        price, pn, qty, side_array(trades), t, tn, *cvd_params(cfg, symbol), *out.values(),
    )
    frame = pl.DataFrame(out)
    nan_cols = ["cvd_delta", "ema_cvd", "z_cvd", "cvd_z_raw", "cvd_scale", "cvd_mad_sigma", "cvd_tps"]
    return frame.with_columns([pl.col(c).fill_nan(None) for c in nan_cols])


def cvd_features(trades: pl.DataFrame, cfg: EngineConfig | dict | None = None) -> pl.DataFrame:
    """CVD per trade; one calculator per symbol over the rows in the order given.

    Input: symbol, event_time_ms, agg_trade_id, price, qty, is_buyer_maker. Output: input
    order, the input columns then the columns of ALGORITHMS.md §2.11.
    """
    c = resolve_config(cfg, prefer="cvd").cvd
    trades = _ensure_symbol(trades)
    keep = [x for x in ("symbol", "event_time_ms", "agg_trade_id", "price", "qty", "is_buyer_maker")
            if x in trades.columns]
    parts = []
    for sym, idx in _symbol_groups(trades):
        sub = trades[idx] if idx is not None else trades
        res = cvd_run(cvd_initial_state(c), sub, c, sym)
        frame = pl.concat([sub.select(keep), res], how="horizontal")
        if idx is not None:
            frame = frame.with_columns(pl.Series("__row", idx))
        parts.append(frame)
    return _reassemble(parts, trades.height)

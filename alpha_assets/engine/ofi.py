"""OFI: order-flow imbalance from K-level book snapshots (ALGORITHMS.md §1), v13-faithful.

The recursion (winsorised values feed the window that scores the next row) runs in one
compiled loop over an explicit state, so a stream can be processed in pieces.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from alpha_assets.engine.config import EngineConfig, OFIConfig, resolve_config
from alpha_assets.engine.windows import (
    ring_sq_dev_next_sum,
    ring_sum,
    sorted_mad,
    sorted_median,
    window_push,
)

K_MAX = 5
DAY_MS = 86_400_000

# integer state slots
(I_HAS_EMA, I_LAST_T, I_HAS_LAST_T, I_LAST_DAY, I_HAS_LAST_DAY, I_BAD, I_HN, I_HHEAD, I_SESSION, I_ROWS,
 I_NEXT_OK) = range(11)
# float state slots: prev bid qty [0:5], prev ask qty [5:10], ema [10]
F_EMA = 10
F_NEXT_SUM = 11  # sum of the next row's window, computed alongside this row's squared deviations


def ofi_initial_state(cfg: OFIConfig) -> dict[str, np.ndarray]:
    w = cfg.z_window
    return {
        "f": np.zeros(12, dtype=np.float64),
        "i": np.zeros(11, dtype=np.int64),
        "hist": np.zeros(w, dtype=np.float64),
        "hsorted": np.zeros(w + 1, dtype=np.float64),
    }


@njit(cache=True, error_model="numpy", inline="always")
def _before(a: float, b: float, descending: bool) -> bool:
    # strict "a sorts before b"; NaN sorts last
    if a != a:
        return False
    if b != b:
        return True
    return a > b if descending else a < b


@njit(cache=True, error_model="numpy", inline="always")
def _normalise_side(px: np.ndarray, qty: np.ndarray, pxn: np.ndarray, qn: np.ndarray, k: int,
                    descending: bool, out_q: np.ndarray, p: np.ndarray, q: np.ndarray, bad_q: np.ndarray) -> int:
    """One side of one snapshot -> sanitised quantities in out_q; returns 1 if anything was fixed.
    p, q, bad_q are scratch arrays of length >= k (no allocation per row)."""
    m = k
    for j in range(k):
        if pxn[j] and qn[j]:
            m = j
            break
    for j in range(m):
        p[j] = np.nan if pxn[j] else px[j]
        q[j] = qty[j]
        bad_q[j] = qn[j]
    unordered = False
    for j in range(1, m):
        if descending:
            if p[j] > p[j - 1]:
                unordered = True
        elif p[j] < p[j - 1]:
            unordered = True
    if unordered:
        # stable insertion sort (v13 sorts the whole list; NaN prices go last here)
        for j in range(1, m):
            pj = p[j]
            qj = q[j]
            bj = bad_q[j]
            i = j
            while i > 0 and _before(pj, p[i - 1], descending):
                p[i] = p[i - 1]
                q[i] = q[i - 1]
                bad_q[i] = bad_q[i - 1]
                i -= 1
            p[i] = pj
            q[i] = qj
            bad_q[i] = bj
    fixed = 0
    for j in range(k):
        if j >= m:
            out_q[j] = 0.0
            continue
        if not math.isfinite(p[j]):
            fixed = 1
        qq = q[j]
        if bad_q[j] or not math.isfinite(qq) or qq < 0.0:
            out_q[j] = 0.0
            fixed = 1
        else:
            out_q[j] = qq
    return fixed


@njit(cache=True, error_model="numpy")
def ofi_kernel(fs: np.ndarray, ist: np.ndarray, hist: np.ndarray, hs: np.ndarray,
               bpx: np.ndarray, bq: np.ndarray, apx: np.ndarray, aq: np.ndarray,
               bpxn: np.ndarray, bqn: np.ndarray, apxn: np.ndarray, aqn: np.ndarray,
               t: np.ndarray, tn: np.ndarray,
               weights: np.ndarray, k: int, gap_ms: float, day_reset: bool, std_floor: float,
               winsor_k: float, z_clip: float, alpha: float, n0: int,
               o_ofi: np.ndarray, o_raw: np.ndarray, o_wins: np.ndarray, o_k: np.ndarray,
               o_z: np.ndarray, o_ema: np.ndarray, o_warm: np.ndarray, o_stdz: np.ndarray,
               o_reset: np.ndarray, o_bad: np.ndarray, o_sess: np.ndarray) -> None:
    w_cap = hist.shape[0]
    nb = np.empty(k, dtype=np.float64)
    na = np.empty(k, dtype=np.float64)
    sp = np.empty(k, dtype=np.float64)
    sq = np.empty(k, dtype=np.float64)
    sb = np.zeros(k, dtype=np.bool_)
    one_minus_alpha = 1.0 - alpha
    for r in range(t.shape[0]):
        # --- session resets (before the row is used)
        reset = False
        if not tn[r]:
            tr = t[r]
            if ist[I_HAS_LAST_T] == 1 and float(tr - ist[I_LAST_T]) > gap_ms:
                reset = True
            if day_reset:
                day = tr // DAY_MS
                if ist[I_HAS_LAST_DAY] == 1 and day != ist[I_LAST_DAY]:
                    reset = True
                ist[I_LAST_DAY] = day
                ist[I_HAS_LAST_DAY] = 1
            ist[I_LAST_T] = tr
            ist[I_HAS_LAST_T] = 1
        if reset:
            ist[I_HN] = 0
            ist[I_HHEAD] = 0
            ist[I_HAS_EMA] = 0
            ist[I_BAD] = 0
            ist[I_SESSION] += 1
        # --- normalise the snapshot
        ist[I_BAD] += _normalise_side(bpx[r], bq[r], bpxn[r], bqn[r], k, True, nb, sp, sq, sb)
        ist[I_BAD] += _normalise_side(apx[r], aq[r], apxn[r], aqn[r], k, False, na, sp, sq, sb)
        raw = 0.0
        for j in range(k):
            c = weights[j] * ((nb[j] - fs[j]) - (na[j] - fs[5 + j]))
            o_k[r, j] = c
            raw = raw + c
            fs[j] = nb[j]
            fs[5 + j] = na[j]
        for j in range(k, K_MAX):
            o_k[r, j] = np.nan
        n = ist[I_HN]
        head = ist[I_HHEAD]
        ofi = raw
        wins = False
        stdz = False
        if n < n0:
            o_z[r] = np.nan
            o_warm[r] = True
            ist[I_NEXT_OK] = 0
        else:
            o_warm[r] = False
            start = (head - n) % w_cap
            total = fs[F_NEXT_SUM] if ist[I_NEXT_OK] == 1 else ring_sum(hist, start, n)
            m = total / n
            # the winsorised value depends only on median/MAD, so it is known before the std
            if n > 10:
                med = sorted_median(hs, n)
                mad = sorted_mad(hs, n, med)
                if mad > 0.0 and abs(raw - med) > winsor_k * mad:
                    if raw > med:
                        ofi = med + winsor_k * mad
                    else:
                        ofi = med - winsor_k * mad
                    wins = True
            ss, nxt = ring_sq_dev_next_sum(hist, start, n, m, n == w_cap)
            fs[F_NEXT_SUM] = nxt + ofi
            ist[I_NEXT_OK] = 1
            sd = math.sqrt(ss / (n - 1))
            if sd < std_floor:
                sd = std_floor
                stdz = True
            z = (ofi - m) / sd  # = (raw - m) / sd unless winsorised, as in v13
            if z_clip > 0.0 and abs(z) > z_clip:
                z = z_clip if z > 0 else -z_clip
            o_z[r] = z
        if ist[I_HAS_EMA] == 0:
            ema = ofi
            ist[I_HAS_EMA] = 1
        else:
            ema = alpha * ofi + one_minus_alpha * fs[F_EMA]
        fs[F_EMA] = ema
        ist[I_HN], ist[I_HHEAD] = window_push(hist, hs, n, head, w_cap, ofi)
        o_ofi[r] = ofi
        o_raw[r] = raw
        o_wins[r] = wins
        o_ema[r] = ema
        o_stdz[r] = stdz
        o_reset[r] = reset
        o_bad[r] = ist[I_BAD]
        o_sess[r] = ist[I_SESSION]
        ist[I_ROWS] += 1


def _float_cols(frame: pl.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for null, null mask) as (n, len(names)) arrays."""
    n = frame.height
    # column-major, so each column is one contiguous copy; the kernel takes the strided view
    vals = np.empty((len(names), n), dtype=np.float64).T
    nulls = np.zeros((len(names), n), dtype=np.bool_).T
    for j, name in enumerate(names):
        if name not in frame.columns:
            vals[:, j] = np.nan
            nulls[:, j] = True
            continue
        s = frame.get_column(name)
        if s.dtype != pl.Float64:
            s = s.cast(pl.Float64, strict=False)
        if s.null_count():
            nulls[:, j] = s.is_null().to_numpy()
            s = s.fill_null(np.nan)
        vals[:, j] = s.to_numpy()
    return vals, nulls


def time_arrays(frame: pl.DataFrame, column: str = "event_time_ms") -> tuple[np.ndarray, np.ndarray]:
    if column not in frame.columns:
        return np.zeros(frame.height, dtype=np.int64), np.ones(frame.height, dtype=np.bool_)
    s = frame.get_column(column)
    if s.dtype.is_float():
        s = s.fill_nan(None)
        s = pl.Series(s.name, s.to_numpy(), dtype=pl.Float64).fill_nan(None)
        s = s.cast(pl.Int64, strict=False)
    else:
        s = s.cast(pl.Int64, strict=False)
    nulls = s.is_null().to_numpy()
    return s.fill_null(0).to_numpy().astype(np.int64, copy=False), np.ascontiguousarray(nulls)


OFI_COLUMNS = [
    "ofi_session_id", "ofi_session_reset", "ofi_raw", "ofi", "ofi_winsorized",
    "ofi_k1", "ofi_k2", "ofi_k3", "ofi_k4", "ofi_k5", "z_ofi", "ema_ofi",
    "ofi_warmup", "ofi_std_zero", "ofi_bad_points",
]


def ofi_params(cfg: OFIConfig) -> tuple[Any, ...]:
    """The configuration arguments of `ofi_kernel`, in its order (after the input arrays)."""
    weights = np.asarray(cfg.normalised_weights(), dtype=np.float64)
    return (weights, cfg.levels, float(cfg.reset_on_gap_ms), cfg.reset_on_session_change, cfg.std_floor,
            cfg.winsor_k, cfg.clip_value(), cfg.ema_alpha, cfg.warmup_threshold())


def ofi_run(state: dict[str, np.ndarray], book: pl.DataFrame, cfg: OFIConfig) -> pl.DataFrame:
    """Advance an OFI state over book rows (one symbol, presentation order); returns OFI columns."""
    k = cfg.levels
    bpx, bpxn = _float_cols(book, [f"bid_px_{j}" for j in range(1, k + 1)])
    bq, bqn = _float_cols(book, [f"bid_qty_{j}" for j in range(1, k + 1)])
    apx, apxn = _float_cols(book, [f"ask_px_{j}" for j in range(1, k + 1)])
    aq, aqn = _float_cols(book, [f"ask_qty_{j}" for j in range(1, k + 1)])
    t, tn = time_arrays(book)
    n = book.height
    o_ofi = np.empty(n)
    o_raw = np.empty(n)
    o_wins = np.empty(n, dtype=np.bool_)
    o_k = np.empty((n, K_MAX))
    o_z = np.empty(n)
    o_ema = np.empty(n)
    o_warm = np.empty(n, dtype=np.bool_)
    o_stdz = np.empty(n, dtype=np.bool_)
    o_reset = np.empty(n, dtype=np.bool_)
    o_bad = np.empty(n, dtype=np.int64)
    o_sess = np.empty(n, dtype=np.int64)
    ofi_kernel(
        state["f"], state["i"], state["hist"], state["hsorted"],
        bpx, bq, apx, aq, bpxn, bqn, apxn, aqn, t, tn, *ofi_params(cfg),
        o_ofi, o_raw, o_wins, o_k, o_z, o_ema, o_warm, o_stdz, o_reset, o_bad, o_sess,
    )
    cols: dict[str, Any] = {
        "ofi_session_id": o_sess,
        "ofi_session_reset": o_reset,
        "ofi_raw": o_raw,
        "ofi": o_ofi,
        "ofi_winsorized": o_wins,
    }
    for j in range(K_MAX):
        cols[f"ofi_k{j + 1}"] = o_k[:, j]
    cols.update({"z_ofi": o_z, "ema_ofi": o_ema, "ofi_warmup": o_warm, "ofi_std_zero": o_stdz,
                 "ofi_bad_points": o_bad})
    out = pl.DataFrame(cols)
    nan_to_null = ["z_ofi"] + [f"ofi_k{j + 1}" for j in range(k, K_MAX)]
    return out.with_columns([pl.col(c).fill_nan(None) for c in nan_to_null])


def ofi_features(book: pl.DataFrame, cfg: EngineConfig | dict | None = None) -> pl.DataFrame:
    """OFI per book snapshot; one calculator per symbol over the rows in the order given.

    Input: symbol, event_time_ms, bid_px_1..5, bid_qty_1..5, ask_px_1..5, ask_qty_1..5.
    Output: input order, columns of ALGORITHMS.md §1.9.
    """
    c = resolve_config(cfg, prefer="ofi").ofi
    book = _ensure_symbol(book)
    parts = []
    for _sym, idx in _symbol_groups(book):
        sub = book[idx] if idx is not None else book
        st = ofi_initial_state(c)
        res = ofi_run(st, sub, c)
        base = sub.select(
            pl.col("symbol"),
            time_arrays_expr(sub),
        )
        frame = pl.concat([base, res], how="horizontal")
        if idx is not None:
            frame = frame.with_columns(pl.Series("__row", idx))
        parts.append(frame)
    return _reassemble(parts, book.height)


def time_arrays_expr(frame: pl.DataFrame) -> pl.Expr:
    if "event_time_ms" in frame.columns:
        return pl.col("event_time_ms").cast(pl.Int64, strict=False)
    return pl.lit(None, dtype=pl.Int64).alias("event_time_ms")


def _ensure_symbol(frame: pl.DataFrame) -> pl.DataFrame:
    if "symbol" not in frame.columns:
        return frame.with_columns(pl.lit("").alias("symbol"))
    return frame.with_columns(pl.col("symbol").cast(pl.Utf8).fill_null("").str.to_uppercase())


def _symbol_groups(frame: pl.DataFrame) -> list[tuple[str, np.ndarray | None]]:
    """(symbol, row indices) per symbol in order of first appearance; None = all rows."""
    syms = frame.get_column("symbol")
    uniq = syms.unique(maintain_order=True).to_list()
    if len(uniq) <= 1:
        return [(uniq[0] if uniq else "", None)]
    codes = syms.to_numpy()
    return [(s, np.flatnonzero(codes == s)) for s in uniq]


def _reassemble(parts: list[pl.DataFrame], height: int) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame()
    if "__row" not in parts[0].columns:
        return parts[0]
    return pl.concat(parts).sort("__row").drop("__row")

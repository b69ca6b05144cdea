"""core_algo's per-evaluation path (ALGORITHMS.md §4) on event time, as one compiled loop:
dedup -> regime -> fusion -> guards -> warm-up -> thresholds -> reverse prevention -> confirm.

Event-time definitions (§4.3): `now` is the row's ts_ms / 1000; cooldowns, the reverse
hold and the market window use it; the event-lag guard uses recv_time_ms - event_time_ms
of the row (disabled when no receive time); resync / reconnect are event columns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alpha_assets.engine.config import GuardConfig
from alpha_assets.engine.fusion import NEUTRAL, fusion_row
from alpha_assets.engine.strategy_mode import ACTIVE, NORMAL, QUIET, regime_update

# guard_reason codes (0 = none); the text forms are built in pipeline.guard_reason_strings
GUARD_REASONS = [
    "", "spread_too_high", "missing_msgs_rate", "resync_cooldown", "reconnect_cooldown", "exit_cooldown",
    "lag_exceeded", "warmup_guard", "weak_signal_throttle", "low_consistency", "insufficient_hold_time",
    "reverse_cooldown_insufficient_ticks",
]
(G_NONE, G_SPREAD, G_MISSING, G_RESYNC, G_RECONNECT, G_EXIT, G_LAG, G_WARMUP, G_WEAK, G_LOWCONS, G_HOLD,
 G_TICKS) = range(12)

# decision codes: why the row ended as it did (closed vocabulary, documented in pipeline.py)
DECISIONS = [
    "confirmed", "reverse_blocked", "below_threshold", "low_consistency", "weak_signal", "warmup", "guard",
    "bad_input", "dedup",
]
(D_CONFIRMED, D_REVERSE, D_BELOW, D_LOWCONS, D_WEAK, D_WARMUP, D_GUARD, D_BAD, D_DEDUP) = range(9)

# int state
(K_HAS_LAST, K_LAST_MS, K_HAS_RESYNC, K_HAS_RECONNECT, K_PEND_RESYNC, K_PEND_RECONNECT, K_HAS_LTT, K_LAST_DIR,
 K_CONSEC, K_REGIME, K_ROWS) = range(11)
# float state
H_LAST_RESYNC, H_LAST_RECONNECT, H_LTT = range(3)

(Q_SPREAD, Q_MISSING, Q_RESYNC, Q_RECONNECT, Q_LAG, Q_THR_ACTIVE, Q_THR_QUIET, Q_THR_NORMAL, Q_WEAK, Q_CONS,
 Q_HOLD, Q_TICKS, Q_DEDUP) = range(13)


def guard_params(cfg: GuardConfig) -> np.ndarray:
    th = cfg.regime_thresholds
    return np.array([
        cfg.spread_bps_cap, cfg.missing_msgs_rate_cap, cfg.resync_cooldown_sec, cfg.reconnect_cooldown_sec,
        cfg.max_event_lag_sec, th["active"], th["quiet"], th.get("normal", 1.5), cfg.weak_signal_threshold,
        cfg.consistency_threshold, cfg.min_hold_time_sec, cfg.reversal_ticks, cfg.dedup_ms,
    ], dtype=np.float64)


def guard_initial_state() -> dict[str, np.ndarray]:
    return {"gi": np.zeros(11, dtype=np.int64), "gf": np.zeros(3, dtype=np.float64)}


@njit(cache=True, error_model="numpy", inline="always")
def _reverse(gi: np.ndarray, gf: np.ndarray, q: np.ndarray, direction: int, now: float, commit: bool) -> int:
    """Reverse prevention; returns the blocking guard code or 0. Mutates the tick counter as v13 did."""
    if gi[K_HAS_LTT] == 1 and now - gf[H_LTT] < q[Q_HOLD]:
        return G_HOLD
    if gi[K_LAST_DIR] != 0:
        if gi[K_LAST_DIR] == direction:
            gi[K_CONSEC] += 1
        else:
            blocked = gi[K_CONSEC] < q[Q_TICKS]
            gi[K_CONSEC] = 1
            if blocked:
                return G_TICKS
    if commit:
        gf[H_LTT] = now
        gi[K_HAS_LTT] = 1
        gi[K_LAST_DIR] = direction
        gi[K_CONSEC] += 1
    return 0


@njit(cache=True, error_model="numpy", inline="always")
def _cooldown(gi: np.ndarray, gf: np.ndarray, happened: bool, now: float, has_k: int, last_k: int,
              window_s: float) -> bool:
    """A resync (or reconnect) guards from when it happens until `window_s` after it."""
    if happened:
        gf[last_k] = now
        gi[has_k] = 1
        return True
    return gi[has_k] == 1 and now - gf[last_k] < window_s


@njit(cache=True, error_model="numpy")
def signal_kernel(gi: np.ndarray, gf: np.ndarray, q: np.ndarray, fi: np.ndarray, ff: np.ndarray, fp: np.ndarray,
                  mi: np.ndarray, mt: np.ndarray, mtr: np.ndarray, msp: np.ndarray, mvo: np.ndarray,
                  s_tr: np.ndarray, s_sp: np.ndarray, s_vo: np.ndarray, mp: np.ndarray,
                  ts_ms: np.ndarray, ts_null: np.ndarray, z_ofi: np.ndarray, z_cvd: np.ndarray, lag: np.ndarray,
                  spread: np.ndarray, rate_min: np.ndarray, vol_bps: np.ndarray, sched: np.ndarray,
                  missing: np.ndarray, resync: np.ndarray, reconnect: np.ndarray, ev_lag: np.ndarray,
                  bad: np.ndarray,
                  o_score: np.ndarray, o_sig: np.ndarray, o_cons: np.ndarray, o_reasons: np.ndarray,
                  o_fwarm: np.ndarray, o_regime: np.ndarray, o_market: np.ndarray, o_confirm: np.ndarray,
                  o_gating: np.ndarray, o_guard: np.ndarray, o_gval: np.ndarray, o_decision: np.ndarray,
                  o_warm: np.ndarray, o_thr: np.ndarray, o_cand: np.ndarray) -> None:
    for r in range(ts_ms.shape[0]):
        zo = z_ofi[r]
        zc = z_cvd[r]
        warm_active = not (zo == zo) or not (zc == zc)
        o_warm[r] = warm_active
        o_score[r] = np.nan
        o_sig[r] = NEUTRAL
        o_cons[r] = np.nan
        o_reasons[r] = 0
        o_fwarm[r] = False
        o_market[r] = False
        o_confirm[r] = False
        o_gating[r] = False
        o_guard[r] = G_NONE
        o_gval[r] = np.nan
        o_thr[r] = np.nan
        o_cand[r] = False
        gi[K_PEND_RESYNC] |= resync[r]
        gi[K_PEND_RECONNECT] |= reconnect[r]
        if ts_null[r]:
            o_regime[r] = gi[K_REGIME]
            o_decision[r] = D_BAD
            continue
        t = ts_ms[r]
        if gi[K_HAS_LAST] == 1 and abs(t - gi[K_LAST_MS]) < q[Q_DEDUP]:
            # v13 returned nothing here and updated nothing; we keep the row, marked
            o_regime[r] = gi[K_REGIME]
            o_decision[r] = D_DEDUP
            continue
        gi[K_HAS_LAST] = 1
        gi[K_LAST_MS] = t
        gi[K_ROWS] += 1
        now = t / 1000.0
        regime, market = regime_update(mi, mt, mtr, msp, mvo, s_tr, s_sp, s_vo, mp, now, rate_min[r], spread[r],
                                       vol_bps[r], sched[r])
        gi[K_REGIME] = regime
        o_regime[r] = regime
        o_market[r] = market
        res = fusion_row(fi, ff, fp, zo, zc, now, lag[r])
        score = res[0]
        cons = res[2]
        o_score[r] = score
        o_sig[r] = res[1]
        o_cons[r] = cons
        o_reasons[r] = res[5]
        o_fwarm[r] = res[6]
        # guards, first hit wins
        g = G_NONE
        gval = np.nan
        did_resync = gi[K_PEND_RESYNC] == 1
        did_reconnect = gi[K_PEND_RECONNECT] == 1
        gi[K_PEND_RESYNC] = 0
        gi[K_PEND_RECONNECT] = 0
        sp = spread[r]
        if sp == sp and sp > q[Q_SPREAD]:
            g = G_SPREAD
            gval = sp
        elif missing[r] > q[Q_MISSING]:
            g = G_MISSING
            gval = missing[r]
        elif _cooldown(gi, gf, did_resync, now, K_HAS_RESYNC, H_LAST_RESYNC, q[Q_RESYNC]):
            g = G_RESYNC
        elif _cooldown(gi, gf, did_reconnect, now, K_HAS_RECONNECT, H_LAST_RECONNECT, q[Q_RECONNECT]):
            g = G_RECONNECT
        if g == G_NONE:
            el = ev_lag[r]
            if el == el and el > q[Q_LAG]:
                g = G_LAG
                gval = el
        guard_active = g != G_NONE
        reason = g
        if warm_active and not guard_active:
            reason = G_WARMUP
        if regime == ACTIVE:
            thr = q[Q_THR_ACTIVE]
        elif regime == NORMAL:
            thr = q[Q_THR_NORMAL]
        else:
            thr = q[Q_THR_QUIET]
        if not warm_active:
            if abs(score) < q[Q_WEAK]:
                reason = G_WEAK
            elif cons < q[Q_CONS]:
                reason = G_LOWCONS
        cand = abs(score) >= thr and not warm_active and not guard_active
        confirm = False
        blocked = 0
        if cand:
            direction = 1 if score > 0 else -1
            blocked = _reverse(gi, gf, q, direction, now, False)
            if blocked != 0:
                reason = blocked
            else:
                confirm = True
                _reverse(gi, gf, q, direction, now, True)
        o_confirm[r] = confirm
        o_gating[r] = guard_active
        o_guard[r] = reason
        o_gval[r] = gval
        o_thr[r] = thr
        o_cand[r] = cand
        if bad[r]:
            d = D_BAD
        elif guard_active:
            d = D_GUARD
        elif warm_active:
            d = D_WARMUP
        elif confirm:
            d = D_CONFIRMED
        elif blocked != 0:
            d = D_REVERSE
        elif reason == G_WEAK:
            d = D_WEAK
        elif reason == G_LOWCONS:
            d = D_LOWCONS
        else:
            d = D_BELOW
        o_decision[r] = d


__all__ = ["signal_kernel", "guard_params", "guard_initial_state", "GUARD_REASONS", "DECISIONS", "QUIET"]

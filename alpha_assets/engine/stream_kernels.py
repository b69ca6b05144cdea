"""Compiled drivers of the live step (engine/stream.py): one call per chunk side instead of dozens
of numpy calls on a handful of rows. They call the batch path's own kernels (`ofi_kernel`,
`cvd_kernel`, `_vol_kernel`, `_match`, `signal_kernel`) and compute, value for value, the polars
expressions of pipeline.features_step / signal_rows.signals_step between them.

Scalar state lives in one int64 array (`S_*` slots). The book tail (rows a coming trade can still
match) lives in seven arrays with a capacity; rows [S_TAIL_START, S_TAIL_END) are live.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from alpha_assets.engine.cvd import cvd_kernel
from alpha_assets.engine.guards import signal_kernel
from alpha_assets.engine.ofi import K_MAX, ofi_kernel
from alpha_assets.engine.pipeline import _match, _vol_kernel

I64_MIN = np.iinfo(np.int64).min
Arr = np.ndarray

(S_BOOK_CM, S_TRADE_CM, S_UID_SEEN, S_UID_LAST, S_UID_LAST_NULL, S_BOOK_GAPCUM, S_MATCHED_GAPCUM, S_TAIL_START,
 S_TAIL_END, S_ARRIVAL_N, S_LAST_SEQ, S_REGRESSIONS) = range(12)
N_SLOTS = 12


def scalar_state() -> np.ndarray:
    s = np.zeros(N_SLOTS, dtype=np.int64)
    s[S_BOOK_CM] = s[S_TRADE_CM] = s[S_LAST_SEQ] = I64_MIN
    s[S_UID_LAST_NULL] = 1
    return s


@njit(cache=True, error_model="numpy")
def book_kernel(sst: Arr, ofi_f: Arr, ofi_i: Arr, ofi_hist: Arr, ofi_hs: Arr, tcm: Arr, tgap: Arr, tevt: Arr,
                tevtn: Arr, tbid: Arr, task: Arr, tz: Arr, lv: Arr, lvn: Arr, evt: Arr, evt_null: Arr, uid: Arr,
                uid_null: Arr, pu: Arr, pu_null: Arr, rank: Arr, use_rank: bool, weights: Arr, k: int,
                gap_ms: float, day_reset: bool, std_floor: float, winsor_k: float, z_clip: float, alpha: float,
                n0: int) -> tuple[Arr, Arr, Arr, Arr, Arr, Arr, Arr]:
    """OFI over new book rows (stream order), then each row onto the tail with its matching key
    (running-max event time, or the given arrival rank) and its update-id gap count. Returns the
    tail arrays (new ones when the capacity had to grow)."""
    n = evt.shape[0]
    # (n, 5) views of the (20, n) level rows, laid out as ofi_run lays them out
    bpx, bq, apx, aq = lv[0:5].T, lv[5:10].T, lv[10:15].T, lv[15:20].T
    bpxn, bqn, apxn, aqn = lvn[0:5].T, lvn[5:10].T, lvn[10:15].T, lvn[15:20].T
    o_z = np.empty(n)
    b1 = np.empty(n, dtype=np.bool_)
    i1 = np.empty(n, dtype=np.int64)
    f1 = np.empty(n)
    ofi_kernel(ofi_f, ofi_i, ofi_hist, ofi_hs, bpx, bq, apx, aq, bpxn, bqn, apxn, aqn, evt, evt_null,
               weights, k, gap_ms, day_reset, std_floor, winsor_k, z_clip, alpha, n0,
               f1, f1, b1, np.empty((n, K_MAX)), o_z, f1, b1, b1, b1, i1, i1)
    start = sst[S_TAIL_START]
    end = sst[S_TAIL_END]
    live = end - start
    cap = tcm.shape[0]
    if end + n > cap:
        if live + n > cap:
            cap = max(16, 2 * (live + n))
            tcm2, tgap2, tevt2 = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
            tevtn2, tbid2, task2, tz2 = np.empty(cap, np.bool_), np.empty(cap), np.empty(cap), np.empty(cap)
        else:
            tcm2, tgap2, tevt2, tevtn2, tbid2, task2, tz2 = tcm, tgap, tevt, tevtn, tbid, task, tz
        for x in range(live):  # compact: live rows to the front
            tcm2[x], tgap2[x], tevt2[x] = tcm[start + x], tgap[start + x], tevt[start + x]
            tevtn2[x], tbid2[x], task2[x], tz2[x] = tevtn[start + x], tbid[start + x], task[start + x], tz[start + x]
        tcm, tgap, tevt, tevtn, tbid, task, tz = tcm2, tgap2, tevt2, tevtn2, tbid2, task2, tz2
        start = 0
        end = live
    for r in range(n):
        if use_rank:
            cm = rank[r]
        else:
            v = I64_MIN if evt_null[r] else evt[r]
            if v > sst[S_BOOK_CM]:
                sst[S_BOOK_CM] = v
            cm = sst[S_BOOK_CM]
        # resync: prev_last_update_id differs from the previous row's last_update_id (both known)
        if sst[S_UID_SEEN] == 1 and sst[S_UID_LAST_NULL] == 0 and not pu_null[r] and pu[r] != sst[S_UID_LAST]:
            sst[S_BOOK_GAPCUM] += 1
        sst[S_UID_SEEN] = 1
        sst[S_UID_LAST] = uid[r]
        sst[S_UID_LAST_NULL] = 1 if uid_null[r] else 0
        tcm[end] = cm
        tgap[end] = sst[S_BOOK_GAPCUM]
        tevt[end] = evt[r]
        tevtn[end] = evt_null[r]
        tbid[end] = bpx[r, 0]
        task[end] = apx[r, 0]
        tz[end] = o_z[r]
        end += 1
    sst[S_TAIL_START] = start
    sst[S_TAIL_END] = end
    return tcm, tgap, tevt, tevtn, tbid, task, tz


@njit(cache=True, error_model="numpy")
def release_kernel(sst: Arr, evt: Arr, evt_null: Arr, final: bool) -> tuple[int, Arr]:
    """event_time mode: (number of trades the book has passed, their running-max times)."""
    n = evt.shape[0]
    tcm = np.empty(n, dtype=np.int64)
    m = sst[S_TRADE_CM]
    n_rel = n
    for i in range(n):
        v = I64_MIN if evt_null[i] else evt[i]
        if v > m:
            m = v
        tcm[i] = m
        if not final and n_rel == n and m >= sst[S_BOOK_CM]:
            n_rel = i  # the running max is non-decreasing: every later trade waits too
    if n_rel > 0:
        sst[S_TRADE_CM] = tcm[n_rel - 1]
    return n_rel, tcm[:n_rel]


@njit(cache=True, error_model="numpy", inline="always")
def _key(seq: Arr, recv: Arr, recv_null: Arr, i: int) -> tuple[int, int]:
    return seq[i], (I64_MIN if recv_null[i] else recv[i])


@njit(cache=True, error_model="numpy")
def _sorted_side(seq: Arr, recv: Arr, recv_null: Arr, evt: Arr, evt_null: Arr, ids: Arr, ids_null: Arr) -> bool:
    for i in range(1, seq.shape[0]):
        a = (seq[i - 1], I64_MIN if recv_null[i - 1] else recv[i - 1], I64_MIN if evt_null[i - 1] else evt[i - 1],
             I64_MIN if ids_null[i - 1] else ids[i - 1])
        b = (seq[i], I64_MIN if recv_null[i] else recv[i], I64_MIN if evt_null[i] else evt[i],
             I64_MIN if ids_null[i] else ids[i])
        if b < a:
            return False
    return True


@njit(cache=True, error_model="numpy")
def _regressions(sst: Arr, seq: Arr) -> int:
    """Count rows whose ingest_seq is not above every earlier chunk's (a redelivery, a bad
    counter); returns the largest ingest_seq of the chunk."""
    top = I64_MIN
    for x in range(seq.shape[0]):
        if seq[x] != I64_MIN:
            if seq[x] <= sst[S_LAST_SEQ]:
                sst[S_REGRESSIONS] += 1
            top = max(top, seq[x])
    return top


@njit(cache=True, error_model="numpy")
def merge_kernel(sst: Arr, bseq: Arr, brecv: Arr, brecvn: Arr, bevt: Arr, bevtn: Arr, bid: Arr, bidn: Arr,
                 tseq: Arr, trecv: Arr, trecvn: Arr, tevt: Arr, tevtn: Arr, tid: Arr, tidn: Arr
                 ) -> tuple[bool, Arr, Arr]:
    """arrival mode, when each table is already in arrival order (the live case): the merged ranks
    of both (engine/arrival.py's order), continuing the stream's count. ok = False when a table is
    not in order (the caller sorts it first)."""
    nb = bseq.shape[0]
    nt = tseq.shape[0]
    top = max(_regressions(sst, bseq), _regressions(sst, tseq))
    sst[S_LAST_SEQ] = max(sst[S_LAST_SEQ], top)
    b_rank = np.empty(nb, dtype=np.int64)
    t_rank = np.empty(nt, dtype=np.int64)
    if not (_sorted_side(bseq, brecv, brecvn, bevt, bevtn, bid, bidn)
            and _sorted_side(tseq, trecv, trecvn, tevt, tevtn, tid, tidn)):
        return False, b_rank, t_rank
    i = 0
    j = 0
    pos = sst[S_ARRIVAL_N]
    # across tables only (ingest_seq, recv_time_ms, kind) can differ; book (kind 0) wins ties
    while i < nb or j < nt:
        if j >= nt or (i < nb and _key(bseq, brecv, brecvn, i) <= _key(tseq, trecv, trecvn, j)):
            b_rank[i] = pos
            i += 1
        else:
            t_rank[j] = pos
            j += 1
        pos += 1
    sst[S_ARRIVAL_N] = pos
    return True, b_rank, t_rank


@njit(cache=True, error_model="numpy")
def evaluate_kernel(sst: Arr, tcm_tail: Arr, tgap: Arr, tevt: Arr, tevtn: Arr, tbid: Arr, task: Arr, tz: Arr,
                    evt: Arr, evt_null: Arr, recv: Arr, recv_null: Arr, price: Arr, price_null: Arr, qty: Arr,
                    side: Arr, reconnect: Arr, missing: Arr, tcm: Arr,
                    cvd_f: Arr, cvd_i: Arr, cvd_b: Arr, cvd_bs: Arr, cvd_r: Arr, cvd_h: Arr, cp: tuple, vol_s: Arr,
                    vol_tau: float, gi: Arr, gf: Arr, q: Arr, fi: Arr, ff: Arr, fp: Arr, mi: Arr, mt: Arr, mtr: Arr,
                    msp: Arr, mvo: Arr, s_tr: Arr, s_sp: Arr, s_vo: Arr, mp: Arr, pass_lag: bool, sched: Arr,
                    o_zofi: Arr, o_zcvd: Arr, o_spread: Arr, o_score: Arr, o_sig: Arr, o_cons: Arr, o_reasons: Arr,
                    o_fwarm: Arr, o_regime: Arr, o_market: Arr, o_confirm: Arr, o_gating: Arr, o_guard: Arr,
                    o_gval: Arr, o_decision: Arr, o_warm: Arr, o_thr: Arr, o_cand: Arr) -> Arr:
    """Released trades against the tail (match key `tcm`), CVD, volatility and the signal kernel.
    Writes the Signals outputs; returns the CVD rate buffer (grown when it had to)."""
    n = evt.shape[0]
    start = sst[S_TAIL_START]
    end = sst[S_TAIL_END]
    if end > start:
        j = _match(tcm_tail[start:end], tcm)
        if j[n - 1] > 0:
            sst[S_TAIL_START] = start + j[n - 1]
    else:
        j = np.full(n, -1, dtype=np.int64)
    matched0 = sst[S_MATCHED_GAPCUM]
    prev = matched0
    resync = np.empty(n, dtype=np.bool_)
    lag = np.zeros(n)
    for i in range(n):
        if j[i] >= 0:
            x = start + j[i]
            o_zofi[i] = tz[x]
            bid = tbid[x]
            ask = task[x]
            g = tgap[x]
            if pass_lag and not (tevtn[x] or evt_null[i]):
                lag[i] = float(evt[i] - tevt[x]) / 1000.0
        else:
            o_zofi[i] = np.nan
            bid = np.nan
            ask = np.nan
            g = matched0
        resync[i] = g > prev
        prev = g
        if math.isfinite(bid) and math.isfinite(ask) and bid > 0 and ask > 0:
            o_spread[i] = (ask - bid) / ((bid + ask) / 2.0) * 1e4
        else:
            o_spread[i] = np.nan
    sst[S_MATCHED_GAPCUM] = prev
    acc = np.empty(n, dtype=np.bool_)
    tps = np.empty(n)
    f1 = np.empty(n)
    b1 = np.empty(n, dtype=np.bool_)
    i1 = np.empty(n, dtype=np.int64)
    rbuf = cvd_kernel(cvd_f, cvd_i, cvd_b, cvd_bs, cvd_r, cvd_h, price, price_null, qty, side, evt, evt_null,
                      cp[0], cp[1], cp[2], cp[3], cp[4], cp[5], cp[6], cp[7], cp[8], cp[9], cp[10], cp[11], cp[12],
                      cp[13], cp[14], cp[15], cp[16], cp[17], cp[18], cp[19], cp[20], cp[21], cp[22], cp[23],
                      acc, i1, f1, f1, f1, o_zcvd, f1, f1, f1, f1, f1, tps, b1, b1, b1, i1)
    vol = np.empty(n)
    _vol_kernel(vol_s, price, qty, evt, evt_null, vol_tau, vol)
    rate = np.empty(n)
    ev_lag = np.empty(n)
    bad = np.empty(n, dtype=np.bool_)
    for i in range(n):
        rate[i] = 0.0 if tps[i] != tps[i] else tps[i] * 60.0
        vol[i] = vol[i] * 1e4
        if recv_null[i] or evt_null[i]:
            ev_lag[i] = np.nan
        else:
            el = float(recv[i] - evt[i]) / 1000.0
            ev_lag[i] = el if el != el or el > 0.0 else 0.0  # np.maximum(0.0, x): NaN stays NaN
        bad[i] = (not acc[i]) or evt_null[i]
    signal_kernel(gi, gf, q, fi, ff, fp, mi, mt, mtr, msp, mvo, s_tr, s_sp, s_vo, mp,
                  evt, evt_null, o_zofi, o_zcvd, lag, o_spread, rate, vol, sched, missing, resync, reconnect, ev_lag,
                  bad, o_score, o_sig, o_cons, o_reasons, o_fwarm, o_regime, o_market, o_confirm, o_gating, o_guard,
                  o_gval, o_decision, o_warm, o_thr, o_cand)
    return rbuf

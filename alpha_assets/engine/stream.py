"""The live step on numpy columns: features and signals of one chunk without a polars frame, so a
step of a few events costs tens of microseconds.

It runs the very kernels of the batch path (`ofi_kernel`, `cvd_kernel`, `_vol_kernel`, `_match`,
`signal_kernel`), through the compiled drivers of engine/stream_kernels.py, on the state they
keep, so the rows are those of `compute_signals(compute_features(...))`, byte for byte
(tests/engine/test_stream.py).

Book matching per `EngineConfig.book_join`:
  event_time  each trade takes the last book row whose running-max event time is <= the running
              max of the trade times; a trade the book has not passed yet waits (`pending`)
  arrival     rows go in arrival order (engine/arrival.py); each trade takes the last book row
              received before it; nothing waits
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alpha_assets.engine.arrival import arrival_order
from alpha_assets.engine.columns import BookCols, TradeCols, empty_trades
from alpha_assets.engine.config import EngineConfig
from alpha_assets.engine.cvd import cvd_initial_state, cvd_params
from alpha_assets.engine.fusion import fusion_params
from alpha_assets.engine.guards import guard_params
from alpha_assets.engine.ofi import ofi_initial_state, ofi_params
from alpha_assets.engine.signal_rows import guard_labels, kernel_outputs, signals_initial_state
from alpha_assets.engine.strategy_mode import market_params
from alpha_assets.engine.stream_kernels import (
    S_ARRIVAL_N,
    S_REGRESSIONS,
    book_kernel,
    evaluate_kernel,
    merge_kernel,
    release_kernel,
    scalar_state,
)

_NO_RANK = np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class SignalArrays:
    """Signals rows as arrays: kernel codes, NaN for null floats (`price` keeps NaN, with a mask)."""

    trades: TradeCols
    z_ofi: np.ndarray
    z_cvd: np.ndarray
    spread: np.ndarray
    out: dict[str, np.ndarray]  # the signal kernel's outputs

    @property
    def n(self) -> int:
        return self.trades.n


def stream_initial_state(symbol: str, cfg: EngineConfig) -> dict[str, Any]:
    i, f, b = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.bool_)
    return {
        "symbol": symbol.upper(),
        "ofi": ofi_initial_state(cfg.ofi),
        "cvd": cvd_initial_state(cfg.cvd),
        "vol": np.zeros(4, dtype=np.float64),
        "sst": scalar_state(),
        "tail": (i, i.copy(), i.copy(), b, f, f.copy(), f.copy()),  # cm, gapcum, evt, evt_null, bid, ask, z_ofi
        "pending": empty_trades(),
        "signals": signals_initial_state(cfg),
        "params": kernel_params(symbol.upper(), cfg),
    }


def kernel_params(symbol: str, cfg: EngineConfig) -> dict[str, Any]:
    return {
        "ofi": ofi_params(cfg.ofi), "cvd": cvd_params(cfg.cvd, symbol), "vol_tau": float(cfg.features.vol_tau_s),
        "guards": guard_params(cfg.guards), "fusion": fusion_params(cfg.fusion), "market": market_params(cfg.strategy),
        "pass_lag": bool(cfg.fusion.pass_lag), "arrival": cfg.book_join == "arrival",
        "guard_labels": guard_labels(cfg),
    }


def regressions(st: dict[str, Any]) -> int:
    """Rows (arrival mode) whose ingest_seq was not above every earlier chunk's."""
    return int(st["sst"][S_REGRESSIONS])


def pending(st: dict[str, Any]) -> int:
    return st["pending"].n


def _in_arrival_order(st: dict[str, Any], tr: TradeCols, bk: BookCols
                      ) -> tuple[TradeCols, BookCols, np.ndarray, np.ndarray]:
    sst = st["sst"]
    ok, b_rank, t_rank = merge_kernel(sst, bk.seq, bk.recv, bk.recv_null, bk.evt, bk.evt_null, bk.uid, bk.uid_null,
                                      tr.seq, tr.recv, tr.recv_null, tr.evt, tr.evt_null, tr.tid, tr.tid_null)
    if ok:
        return tr, bk, t_rank, b_rank
    bp, tp, br, trk = arrival_order(bk.keys(), tr.keys())  # a table out of order: sort, then rank
    base = int(sst[S_ARRIVAL_N])
    sst[S_ARRIVAL_N] = base + bk.n + tr.n
    return tr.take(tp), bk.take(bp), trk + base, br + base


def advance(st: dict[str, Any], tr: TradeCols, bk: BookCols, sched_fn: Any, final: bool) -> SignalArrays | None:
    """Advance the state by a chunk of this symbol; the Signals arrays of the trades evaluated now.
    `sched_fn(trades)` gives the schedule flag per released trade."""
    sst, p = st["sst"], st["params"]
    if p["arrival"]:
        if tr.n + bk.n == 0:
            return None
        tr, bk, t_rank, b_rank = _in_arrival_order(st, tr, bk)
    else:
        b_rank = _NO_RANK
    if bk.n:
        o = st["ofi"]
        st["tail"] = book_kernel(sst, o["f"], o["i"], o["hist"], o["hsorted"], *st["tail"], bk.lv, bk.lvn,
                                 bk.evt, bk.evt_null, bk.uid, bk.uid_null, bk.pu, bk.pu_null, b_rank, p["arrival"],
                                 *p["ofi"])
    if p["arrival"]:
        rel, tcm = tr, t_rank
    else:
        pend = st["pending"]
        allt = tr if pend.n == 0 else (pend if tr.n == 0 else pend.extend(tr))
        n_rel, tcm = release_kernel(sst, allt.evt, allt.evt_null, final)
        if n_rel == allt.n:
            rel, st["pending"] = allt, empty_trades()
        else:
            rel, st["pending"] = allt.take(slice(0, n_rel)), allt.take(slice(n_rel, None))
    n = rel.n
    if n == 0:
        return None
    o = kernel_outputs(n)
    z_ofi, z_cvd, spread = np.empty(n), np.empty(n), np.empty(n)
    c, s = st["cvd"], st["signals"]
    g, fu, m = s["g"], s["fus"], s["mkt"]
    c["r"] = evaluate_kernel(
        sst, *st["tail"], rel.evt, rel.evt_null, rel.recv, rel.recv_null, rel.price, rel.price_null, rel.qty,
        rel.side, rel.reconnect, rel.missing, tcm, c["f"], c["i"], c["b"], c["bsorted"], c["r"], c["h"], p["cvd"],
        st["vol"], p["vol_tau"], g["gi"], g["gf"], p["guards"], fu["i"], fu["f"], p["fusion"],
        m["mi"], m["mt"], m["mtr"], m["msp"], m["mvo"], m["str"], m["ssp"], m["svo"], p["market"], p["pass_lag"],
        sched_fn(rel), z_ofi, z_cvd, spread, *o.values())
    return SignalArrays(rel, z_ofi, z_cvd, spread, o)

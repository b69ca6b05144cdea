"""Features (one row per trade, against the latest book at or before it) and Signals.

Both are driven by explicit per-symbol state so that the batch functions here and the
live `step()` run the very same code: batch = one step over everything, final.

Book matching (EngineConfig.book_join). "event_time": each trade is evaluated against the last
book row (stream order) whose running-maximum event time is <= the running maximum of the trade
times so far; for time-sorted inputs this is the plain as-of-backward join, and the book pointer
never moves back. "arrival": rows in arrival order (engine/arrival.py), each trade against the
last book row received before it.
`lag_ms` = trade time - book time is kept as data (v13 preferred a book <= 800 ms old).

decision_code vocabulary (why a Signals row ended as it did), first match wins:
  dedup            within `dedup_ms` (250) of the last evaluated trade: v13 dropped the call;
                   the row is kept for completeness but no state (fusion, guards) moved
  bad_input        the trade itself was unusable (no event time, or rejected by CVD:
                   bad quantity / unknown side); processed as v13 did, never confirmed
  guard            a market guard is active (spread, missing msgs, resync / reconnect
                   cooldown, event lag); guard_reason says which
  warmup           z_ofi or z_cvd not available yet
  confirmed        candidate signal passed reverse prevention: confirm = true
  reverse_blocked  candidate blocked by the reverse-prevention hold / tick rule
  weak_signal      |score| below the weak-signal threshold
  low_consistency  OFI and CVD disagree (consistency below threshold), not a candidate
  below_threshold  |score| below the regime's confirm threshold
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from alpha_assets.engine.arrival import sort_arrival
from alpha_assets.engine.config import EngineConfig, resolve_config
from alpha_assets.engine.cvd import cvd_initial_state, cvd_run
from alpha_assets.engine.ofi import ofi_initial_state, ofi_run
from alpha_assets.engine.signal_rows import signal_schema, signals_initial_state, signals_step
from alpha_assets.market.schema import BOOK_SCHEMA as RAW_BOOK_SCHEMA
from alpha_assets.market.schema import TRADE_SCHEMA as RAW_TRADE_SCHEMA
from alpha_assets.signal_contract import SIGNAL_COLUMNS as CONTRACT_COLUMNS

I64_MIN = np.iinfo(np.int64).min

# The raw tables as market/schema.py defines them, plus the harvester's optional feed-health columns.
TRADE_SCHEMA: dict[str, Any] = {**RAW_TRADE_SCHEMA, "reconnect": pl.Boolean, "missing_msgs_rate": pl.Float64}
BOOK_SCHEMA: dict[str, Any] = dict(RAW_BOOK_SCHEMA)
BOOK_KEEP_SCHEMA: dict[str, Any] = {
    "book_event_time_ms": pl.Int64, "book_recv_time_ms": pl.Int64, "best_bid": pl.Float64, "best_ask": pl.Float64,
    "bid_qty_1": pl.Float64, "ask_qty_1": pl.Float64, "ofi_raw": pl.Float64, "ofi": pl.Float64, "z_ofi": pl.Float64,
    "ema_ofi": pl.Float64, "ofi_warmup": pl.Boolean, "ofi_session_id": pl.Int64,
}
BOOK_KEEP = ["book_event_time_ms", "book_recv_time_ms", "best_bid", "best_ask", "bid_qty_1", "ask_qty_1",
             "ofi_raw", "ofi", "z_ofi", "ema_ofi", "ofi_warmup", "ofi_session_id"]

SIGNAL_COLUMNS = list(CONTRACT_COLUMNS)  # a list: frames' `columns` compare equal to it


def _cast_col(frame: pl.DataFrame, name: str, dtype: Any) -> pl.Expr:
    if name not in frame.columns:
        return pl.lit(None, dtype=dtype).alias(name)
    col = pl.col(name)
    src = frame.schema[name]
    if dtype == pl.Int64 and src.is_float():
        # floats (e.g. recv_time_ms recorded as float) -> Int64; NaN/inf -> null
        col = pl.when(col.is_finite()).then(col).otherwise(None).round(0)
    return col.cast(dtype, strict=False).alias(name)


def normalise(frame: pl.DataFrame | None, schema: dict[str, Any]) -> pl.DataFrame:
    """Canonical columns and dtypes; unknown values become null, never an exception."""
    if frame is None:
        return pl.DataFrame(schema=schema)
    exprs = []
    for name, dtype in schema.items():
        if name in frame.columns and frame.schema[name] == dtype:
            exprs.append(pl.col(name))  # already canonical: no copy
        else:
            exprs.append(_cast_col(frame, name, dtype))
    out = frame.select(exprs)
    return upper_symbols(out)


def distinct_symbols(frame: pl.DataFrame) -> list[str]:
    """Distinct symbols in order of first appearance (one comparison pass for the usual single symbol)."""
    syms = frame.get_column("symbol")
    if syms.len() == 0:
        return []
    first = syms[0]
    if first is not None and syms.null_count() == 0 and bool((syms == first).all()):
        return [first]
    return syms.unique(maintain_order=True).to_list()


def upper_symbols(frame: pl.DataFrame) -> pl.DataFrame:
    """Symbols upper case, null -> "" (only rewrites the column when needed)."""
    uniq = distinct_symbols(frame)
    if frame.get_column("symbol").null_count() == 0 and all(s == s.upper() for s in uniq):
        return frame
    return frame.with_columns(pl.col("symbol").fill_null("").str.to_uppercase())


# --------------------------------------------------------------------------- features state

def features_initial_state(symbol: str, cfg: EngineConfig) -> dict[str, Any]:
    return {
        "symbol": symbol.upper(),
        "ofi": ofi_initial_state(cfg.ofi),
        "cvd": cvd_initial_state(cfg.cvd),
        "vol": np.zeros(4, dtype=np.float64),  # last price, last t (s), decayed sum, has-last flag
        "book_cm": I64_MIN,
        "book_last_uid": None,
        "book_gapcum": 0,
        "trade_cm": I64_MIN,
        "matched_gapcum": 0,
        "tail": None,  # pl.DataFrame of book rows still matchable
        "pending": normalise(None, TRADE_SCHEMA),
    }


def _book_rows(st: dict[str, Any], book: pl.DataFrame, cfg: EngineConfig) -> pl.DataFrame:
    """Run OFI over new book rows; return the per-row columns that trades pick up."""
    ofi = ofi_run(st["ofi"], book, cfg.ofi)
    t = book.get_column("event_time_ms")
    tv = t.fill_null(I64_MIN).to_numpy().astype(np.int64, copy=False)
    cm = np.maximum.accumulate(np.concatenate(([st["book_cm"]], tv)))[1:]
    st["book_cm"] = int(cm[-1]) if cm.size else st["book_cm"]
    uid = book.get_column("last_update_id")
    prev_uid = uid.shift(1)
    if st["book_last_uid"] is not None and book.height:
        prev_uid = prev_uid.scatter(0, st["book_last_uid"])
    pu = book.get_column("prev_last_update_id")
    gap = (pu.is_not_null() & prev_uid.is_not_null() & (pu != prev_uid)).fill_null(False).to_numpy()
    gapcum = st["book_gapcum"] + np.cumsum(gap.astype(np.int64))
    if book.height:
        last = uid[-1]
        st["book_last_uid"] = last if last is not None else st["book_last_uid"]
        st["book_gapcum"] = int(gapcum[-1])
    bid = book.get_column("bid_px_1")
    ask = book.get_column("ask_px_1")
    return pl.DataFrame({
        "_cm": cm,
        "_gapcum": gapcum,
        "book_event_time_ms": t,
        "book_recv_time_ms": book.get_column("recv_time_ms"),
        "best_bid": bid,
        "best_ask": ask,
        "bid_qty_1": book.get_column("bid_qty_1"),
        "ask_qty_1": book.get_column("ask_qty_1"),
    }).hstack(ofi.select("ofi_raw", "ofi", "z_ofi", "ema_ofi", "ofi_warmup", "ofi_session_id"))


@njit(cache=True, error_model="numpy")
def _vol_kernel(vs: np.ndarray, price: np.ndarray, qty: np.ndarray, t: np.ndarray, tn: np.ndarray,
                tau: float, out: np.ndarray) -> None:
    """1-minute realised volatility: sqrt of an exponentially time-decayed sum (tau seconds) of
    squared trade-to-trade log returns. Trades without a usable price/time are skipped."""
    for r in range(price.shape[0]):
        p = price[r]
        if tn[r] or not (math.isfinite(p) and p > 0.0) or not (math.isfinite(qty[r]) and qty[r] > 0.0):
            out[r] = math.sqrt(vs[2]) if vs[3] > 1.0 else np.nan
            continue
        ts = t[r] / 1000.0
        if vs[3] > 0.0:
            ret = math.log(p / vs[0])
            dt = max(0.0, ts - vs[1])
            vs[2] = vs[2] * math.exp(-dt / tau) + ret * ret
            vs[3] = 2.0
        else:
            vs[3] = 1.0
        vs[0] = p
        vs[1] = max(ts, vs[1]) if vs[3] > 1.0 else ts
        out[r] = math.sqrt(vs[2]) if vs[3] > 1.0 else np.nan


@njit(cache=True, error_model="numpy")
def _match(book_cm: np.ndarray, trade_cm: np.ndarray) -> np.ndarray:
    """Last book index with running-max time <= each trade's running-max time (-1 if none):
    both sequences are non-decreasing, so one linear merge replaces a binary search per trade."""
    out = np.empty(trade_cm.shape[0], dtype=np.int64)
    j = -1
    nb = book_cm.shape[0]
    for i in range(trade_cm.shape[0]):
        t = trade_cm[i]
        while j + 1 < nb and book_cm[j + 1] <= t:
            j += 1
        out[i] = j
    return out


def features_step(st: dict[str, Any], trades: pl.DataFrame, book: pl.DataFrame, cfg: EngineConfig,
                  final: bool) -> pl.DataFrame:
    """Advance the features state by a chunk (already normalised, this symbol only).

    book_join "arrival": rows go in arrival order (engine/arrival.py) and the matching key is the
    merged arrival rank instead of the running-max event time, so each trade takes the last book row
    received before it and none is held back."""
    arrival = cfg.book_join == "arrival"
    if arrival:
        trades, book, t_rank, b_rank = sort_arrival(st, trades, book)
    if book.height:
        rows = _book_rows(st, book, cfg)
        if arrival:
            rows = rows.with_columns(pl.Series("_cm", b_rank))
        st["tail"] = rows if st["tail"] is None else pl.concat([st["tail"], rows])
    allt = pl.concat([st["pending"], trades]) if st["pending"].height else trades
    if arrival:
        tcm, n_rel = t_rank, allt.height
    else:
        tv = allt.get_column("event_time_ms").fill_null(I64_MIN).to_numpy().astype(np.int64, copy=False)
        tcm = np.maximum.accumulate(np.concatenate(([st["trade_cm"]], tv)))[1:]
        n_rel = allt.height if final else int(np.searchsorted(tcm, st["book_cm"], side="left"))
    released = allt.head(n_rel)
    st["pending"] = allt.slice(n_rel)
    if n_rel == 0:
        return _empty_features()
    tcm = tcm[:n_rel]
    st["trade_cm"] = int(tcm[-1])
    tail = st["tail"]
    if tail is None or tail.height == 0:
        j = np.full(n_rel, -1, dtype=np.int64)
        book_part = pl.DataFrame({c: pl.Series(c, [None] * n_rel, dtype=t) for c, t in BOOK_KEEP_SCHEMA.items()})
        gapcum = np.full(n_rel, st["matched_gapcum"], dtype=np.int64)
    else:
        j = _match(tail.get_column("_cm").to_numpy(), tcm)
        # j = -1 (no book yet) gathers null
        idx = pl.Series("idx", j, dtype=pl.Int64)
        idx = idx.set(idx < 0, None) if (j < 0).any() else idx
        # gather keeps a null index null (indexing with an all-null index raises)
        book_part = tail.select(pl.col(BOOK_KEEP + ["_gapcum"]).gather(idx))
        gapcum = book_part.get_column("_gapcum").fill_null(st["matched_gapcum"]).to_numpy()
        book_part = book_part.drop("_gapcum")
        last_j = int(j[-1])
        if last_j > 0:
            st["tail"] = tail.slice(last_j)
    prev = np.concatenate(([st["matched_gapcum"]], gapcum[:-1]))
    resync = gapcum > prev
    st["matched_gapcum"] = int(gapcum[-1])
    cvd = cvd_run(st["cvd"], released, cfg.cvd, st["symbol"])
    price = released.get_column("price").fill_null(np.nan).to_numpy().astype(np.float64, copy=False)
    qty = released.get_column("qty").fill_null(np.nan).to_numpy().astype(np.float64, copy=False)
    t = released.get_column("event_time_ms")
    vol = np.empty(n_rel)
    _vol_kernel(st["vol"], price, qty, t.fill_null(0).to_numpy().astype(np.int64, copy=False), t.is_null().to_numpy(),
                cfg.features.vol_tau_s, vol)
    out = pl.concat([released.select(
        "symbol", "event_time_ms", "trade_time_ms", "recv_time_ms", "agg_trade_id", "price", "qty", "is_buyer_maker",
    ), cvd, book_part], how="horizontal")
    return out.with_columns(
        (pl.col("event_time_ms") - pl.col("book_event_time_ms")).alias("lag_ms"),
        (pl.col("recv_time_ms") - pl.col("event_time_ms")).alias("event_lag_ms"),
        _spread_expr().alias("spread_bps"),
        pl.col("cvd_tps").alias("activity"),
        (pl.col("cvd_tps") * 60.0).alias("trade_rate_per_min"),
        pl.Series("realized_vol", vol).fill_nan(None),
        pl.Series("resync", resync),
        released.get_column("reconnect").fill_null(False).alias("reconnect"),
        released.get_column("missing_msgs_rate").fill_null(0.0).alias("missing_msgs_rate"),
    )


def _spread_expr() -> pl.Expr:
    bid = pl.col("best_bid")
    ask = pl.col("best_ask")
    mid = (bid + ask) / 2.0
    ok = bid.is_finite() & ask.is_finite() & (bid > 0) & (ask > 0)
    return pl.when(ok).then((ask - bid) / mid * 1e4).otherwise(None)


def _empty_features() -> pl.DataFrame:
    return pl.DataFrame(schema=_feature_schema())


_SCHEMA_CACHE: dict[str, Any] = {}


def _feature_schema() -> dict[str, Any]:
    if "s" not in _SCHEMA_CACHE:
        cfg = EngineConfig()
        st = features_initial_state("X", cfg)
        one = normalise(pl.DataFrame({"symbol": ["X"], "event_time_ms": [1], "qty": [1.0], "price": [1.0]}),
                        TRADE_SCHEMA)
        book = normalise(pl.DataFrame({"symbol": ["X"], "event_time_ms": [1]}), BOOK_SCHEMA)
        _SCHEMA_CACHE["s"] = features_step(st, one, book, cfg, True).schema
    return dict(_SCHEMA_CACHE["s"])


# --------------------------------------------------------------------------- batch entry points

def _split(frame: pl.DataFrame) -> tuple[list[str], dict[str, pl.DataFrame]]:
    """Rows per symbol (first-appearance order); with several symbols each part carries `__row`."""
    syms = distinct_symbols(frame)
    if len(syms) <= 1:
        return syms, {s: frame for s in syms}
    frame = frame.with_row_index("__row")
    parts = {s: frame.filter(pl.col("symbol") == s) for s in syms}
    return syms, parts


def _per_symbol(frame: pl.DataFrame, run: Callable[[str, pl.DataFrame], pl.DataFrame]) -> pl.DataFrame | None:
    """`run(symbol, its rows)` for each symbol, one engine state each; the results in input row order
    (None: no rows)."""
    syms, parts = _split(frame)
    if not syms:
        return None
    if len(syms) == 1:
        return run(syms[0], parts[syms[0]])
    out = [run(s, parts[s].drop("__row")).with_columns(parts[s].get_column("__row")) for s in syms]
    return pl.concat(out).sort("__row").drop("__row")


def compute_features(trades: pl.DataFrame, book: pl.DataFrame, cfg: Any = None) -> pl.DataFrame:
    """One row per trade (per symbol, trade order), evaluated against the latest book at or
    before it. Output rows keep the input trade order."""
    c = resolve_config(cfg)
    bk = normalise(book, BOOK_SCHEMA)
    out = _per_symbol(normalise(trades, TRADE_SCHEMA), lambda s, part: features_step(
        features_initial_state(s, c), part, bk.filter(pl.col("symbol") == s), c, final=True))
    return _empty_features() if out is None else out


def compute_signals(features: pl.DataFrame, cfg: Any = None, run_id: str = "", detail: bool = False) -> pl.DataFrame:
    """Signals rows (docs/interfaces.md columns; `detail=True` adds diagnostics) for a
    features frame; one engine state per symbol, rows in input order."""
    c = resolve_config(cfg)
    out = None
    if features.height:
        feats = features if features.schema.get("symbol") == pl.Utf8 else features.with_columns(
            pl.col("symbol").cast(pl.Utf8))
        out = _per_symbol(upper_symbols(feats), lambda _s, part: signals_step(signals_initial_state(c), part, c,
                                                                              run_id, detail))
    return pl.DataFrame(schema=signal_schema(detail)) if out is None else out

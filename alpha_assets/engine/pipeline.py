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
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from alpha_assets.engine.arrival import sort_arrival
from alpha_assets.engine.config import EngineConfig, resolve_config
from alpha_assets.engine.cvd import cvd_initial_state, cvd_run
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
from alpha_assets.engine.ofi import ofi_initial_state, ofi_run
from alpha_assets.engine.strategy_mode import REGIMES, market_initial_state, market_params, schedule_active
from alpha_assets.market.schema import BOOK_SCHEMA as RAW_BOOK_SCHEMA
from alpha_assets.market.schema import TRADE_SCHEMA as RAW_TRADE_SCHEMA

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

SIGNAL_COLUMNS = ["run_id", "symbol", "seq", "ts_ms", "signal_type", "score", "consistency", "z_ofi", "z_cvd",
                  "confirm", "gating", "decision_code", "guard_reason", "regime", "div_type", "warmup", "price",
                  "spread_bps", "created_at"]


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


# --------------------------------------------------------------------------- signals state

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
    """Run dedup/regime/fusion/guards over feature rows of one symbol."""
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
    o: dict[str, Any] = {
        "score": np.empty(n), "sig": np.empty(n, dtype=np.int64), "cons": np.empty(n),
        "reasons": np.empty(n, dtype=np.int64), "fwarm": np.empty(n, dtype=np.bool_),
        "regime": np.empty(n, dtype=np.int64), "market": np.empty(n, dtype=np.bool_),
        "confirm": np.empty(n, dtype=np.bool_), "gating": np.empty(n, dtype=np.bool_),
        "guard": np.empty(n, dtype=np.int64), "gval": np.empty(n), "decision": np.empty(n, dtype=np.int64),
        "warm": np.empty(n, dtype=np.bool_), "thr": np.empty(n), "cand": np.empty(n, dtype=np.bool_),
    }
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
        return pl.DataFrame(schema=_signal_schema(detail))
    return feats.select(cols)


def _signal_schema(detail: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "run_id": pl.Utf8, "symbol": pl.Utf8, "seq": pl.Int64, "ts_ms": pl.Int64, "signal_type": pl.Utf8,
        "score": pl.Float64, "consistency": pl.Float64, "z_ofi": pl.Float64, "z_cvd": pl.Float64,
        "confirm": pl.Boolean, "gating": pl.Boolean, "decision_code": pl.Utf8, "guard_reason": pl.Utf8,
        "regime": pl.Utf8, "div_type": pl.Utf8, "warmup": pl.Boolean, "price": pl.Float64,
        "spread_bps": pl.Float64, "created_at": pl.Int64,
    }
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


# --------------------------------------------------------------------------- batch entry points

def _split(frame: pl.DataFrame) -> tuple[list[str], dict[str, pl.DataFrame]]:
    """Rows per symbol (first-appearance order); with several symbols each part carries `__row`."""
    syms = distinct_symbols(frame)
    if len(syms) <= 1:
        return syms, {s: frame for s in syms}
    frame = frame.with_row_index("__row")
    parts = {s: frame.filter(pl.col("symbol") == s) for s in syms}
    return syms, parts


def compute_features(trades: pl.DataFrame, book: pl.DataFrame, cfg: Any = None) -> pl.DataFrame:
    """One row per trade (per symbol, trade order), evaluated against the latest book at or
    before it. Output rows keep the input trade order."""
    c = resolve_config(cfg)
    tr = normalise(trades, TRADE_SCHEMA)
    bk = normalise(book, BOOK_SCHEMA)
    syms, parts = _split(tr)
    if not syms:
        return _empty_features()
    multi = "__row" in next(iter(parts.values())).columns
    out = []
    for s in syms:
        t_part = parts[s]
        st = features_initial_state(s, c)
        b_part = bk.filter(pl.col("symbol") == s)
        f = features_step(st, t_part.drop("__row") if multi else t_part, b_part, c, final=True)
        if multi:
            f = f.with_columns(t_part.get_column("__row"))
        out.append(f)
    if multi:
        return pl.concat(out).sort("__row").drop("__row")
    return out[0]


def compute_signals(features: pl.DataFrame, cfg: Any = None, run_id: str = "", detail: bool = False) -> pl.DataFrame:
    """Signals rows (docs/interfaces.md columns; `detail=True` adds diagnostics) for a
    features frame; one engine state per symbol, rows in input order."""
    c = resolve_config(cfg)
    if features.height == 0:
        return pl.DataFrame(schema=_signal_schema(detail))
    feats = features if features.schema.get("symbol") == pl.Utf8 else features.with_columns(pl.col("symbol").cast(pl.Utf8))
    feats = upper_symbols(feats)
    syms, parts = _split(feats)
    multi = "__row" in next(iter(parts.values())).columns
    out = []
    for s in syms:
        part = parts[s]
        sig = signals_step(signals_initial_state(c), part, c, run_id, detail)
        if multi:
            sig = sig.with_columns(part.get_column("__row"))
        out.append(sig)
    if multi:
        return pl.concat(out).sort("__row").drop("__row")
    return out[0]

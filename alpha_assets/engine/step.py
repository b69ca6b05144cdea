"""The live form of the engine: `step(state, trades_chunk, book_chunk) -> (state, rows)`.

Concatenating the rows of any chunking equals `compute_signals(compute_features(...))` with the
same configuration (for `book_join="arrival"`: chunks cut anywhere in arrival order).

* `step` takes and returns polars frames; `step_rows` takes row mappings (what a stream consumer
  decodes: canonical column names, Python values, absent = null) and returns one dict per Signals
  row, with no polars on the way: the form for small live steps. Both run engine/stream.py.
* book_join "event_time": a trade is only evaluated once the book stream has moved past its time
  (or the stream is finalised), because a later book row could still be the latest one at or
  before it; such trades wait in the state (`pending_trades`). "arrival": every trade is
  evaluated in the step that brings it.
* The state pickles (`to_bytes` / `from_bytes`).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from alpha_assets.engine.columns import (
    BookCols,
    Rows,
    TradeCols,
    book_from_frame,
    book_from_rows,
    trades_from_frame,
    trades_from_rows,
)
from alpha_assets.engine.config import EngineConfig, resolve_config
from alpha_assets.engine.fusion import SIGNALS
from alpha_assets.engine.guards import DECISIONS
from alpha_assets.engine.signal_rows import FORMATTED_GUARDS, guard_text, signal_schema
from alpha_assets.engine.strategy_mode import REGIMES, schedule_active
from alpha_assets.engine.stream import SignalArrays, advance, pending, regressions, stream_initial_state

STATE_VERSION = 2  # 2: numpy stream state (engine/stream.py); 1 held polars frames


@dataclass
class EngineState:
    symbol: str
    cfg: EngineConfig
    run_id: str = ""
    stream: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: {
        "trades_in": 0, "book_in": 0, "rows_out": 0, "foreign_symbol_rows": 0, "arrival_regressions": 0})
    finalised: bool = False
    version: int = STATE_VERSION

    @property
    def pending_trades(self) -> int:
        """Trades held back for book data (always 0 with book_join="arrival")."""
        return pending(self.stream)

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(blob: bytes) -> EngineState:
        state = pickle.loads(blob)
        if not isinstance(state, EngineState):
            raise TypeError(f"not an EngineState checkpoint: {type(state).__name__}")
        if getattr(state, "version", 1) != STATE_VERSION:
            raise ValueError(f"EngineState checkpoint of version {getattr(state, 'version', 1)}, this engine reads "
                             f"{STATE_VERSION}: replay the stream from its start")
        return state


def initial_state(symbol: str, cfg: Any = None, run_id: str = "") -> EngineState:
    c = resolve_config(cfg)
    sym = symbol.upper()
    return EngineState(symbol=sym, cfg=c, run_id=run_id, stream=stream_initial_state(sym, c))


def _advance(state: EngineState, trades: tuple[TradeCols, int], book: tuple[BookCols, int],
             final: bool) -> SignalArrays | None:
    tr, book_cols = trades[0], book[0]
    c = state.counters
    c["foreign_symbol_rows"] += trades[1] + book[1]
    c["trades_in"] += tr.n
    c["book_in"] += book_cols.n
    state.finalised = state.finalised or final
    sa = advance(state.stream, tr, book_cols, lambda rel: _schedule(rel, state.cfg), final)
    c["arrival_regressions"] = regressions(state.stream)
    if sa is not None:
        c["rows_out"] += sa.n
    return sa


def _schedule(tr: TradeCols, cfg: EngineConfig) -> np.ndarray:
    if not (cfg.strategy.schedule_enabled and cfg.strategy.windows):
        return np.zeros(tr.n, dtype=np.bool_)  # what schedule_active answers without windows
    return schedule_active(_nullable_series("ts_ms", tr.evt, tr.evt_null), cfg.strategy)


def step(state: EngineState, trades_chunk: pl.DataFrame | None, book_chunk: pl.DataFrame | None,
         final: bool = False) -> tuple[EngineState, pl.DataFrame]:
    """Advance the state by one chunk of trades and book rows of `state.symbol` (other symbols'
    rows are counted and skipped); returns the Signals rows that became final. `final=True`
    releases every held-back trade."""
    sa = _advance(state, trades_from_frame(trades_chunk, state.symbol), book_from_frame(book_chunk, state.symbol),
                  final)
    return state, _frame(sa, state)


def step_rows(state: EngineState, trades: Rows = (), book: Rows = (),
              final: bool = False) -> tuple[EngineState, list[dict[str, Any]]]:
    """`step` on row mappings: returns one dict per Signals row (keys SIGNAL_COLUMNS, None for null);
    `pl.DataFrame(rows, schema=..., orient="row")` of them is `step`'s frame."""
    sa = _advance(state, trades_from_rows(trades, state.symbol), book_from_rows(book, state.symbol), final)
    return state, _rows(sa, state)


def flush(state: EngineState) -> tuple[EngineState, pl.DataFrame]:
    """End of stream: evaluate every trade still waiting for book data."""
    return step(state, None, None, final=True)


# --------------------------------------------------------------------------- output

def _nullable_series(name: str, vals: np.ndarray, null: np.ndarray) -> pl.Series:
    return pl.Series(name, np.ma.masked_array(vals, null) if null.any() else vals)


def _frame(sa: SignalArrays | None, state: EngineState) -> pl.DataFrame:
    """The rows as a frame built from constructors only (no polars compute call: see columns.py)."""
    if sa is None:
        return pl.DataFrame(schema=signal_schema(False))
    tr, o, n = sa.trades, sa.out, sa.n

    def text(name: str, vals: list[str | None]) -> pl.Series:
        return pl.Series(name, vals, dtype=pl.Utf8)

    first = text("run_id", [state.run_id] * n).to_frame()
    return first.hstack([
        text("symbol", [state.symbol] * n),
        _nullable_series("seq", tr.tid, tr.tid_null),
        _nullable_series("ts_ms", tr.evt, tr.evt_null),
        text("signal_type", [SIGNALS[c] for c in o["sig"].tolist()]),
        pl.Series("score", o["score"], nan_to_null=True),
        pl.Series("consistency", o["cons"], nan_to_null=True),
        pl.Series("z_ofi", sa.z_ofi, nan_to_null=True),
        pl.Series("z_cvd", sa.z_cvd, nan_to_null=True),
        pl.Series("confirm", o["confirm"]),
        pl.Series("gating", o["gating"]),
        text("decision_code", [DECISIONS[c] for c in o["decision"].tolist()]),
        text("guard_reason", _guard_reasons(sa, state)),
        text("regime", [REGIMES[c] for c in o["regime"].tolist()]),
        text("div_type", ["none"] * n),
        pl.Series("warmup", o["warm"] | o["fwarm"]),
        _nullable_series("price", tr.price, tr.price_null),
        pl.Series("spread_bps", sa.spread, nan_to_null=True),
        _nullable_series("created_at", tr.recv, tr.recv_null),
    ], in_place=True)


def _guard_reasons(sa: SignalArrays, state: EngineState) -> list[str | None]:
    labels = state.stream["params"]["guard_labels"]
    return [guard_text(c, v) if c in FORMATTED_GUARDS else (labels[c] or None)
            for c, v in zip(sa.out["guard"].tolist(), sa.out["gval"].tolist(), strict=True)]


def _listed(vals: np.ndarray, null: np.ndarray) -> list[Any]:
    out = vals.tolist()
    if null.any():
        for i in np.flatnonzero(null).tolist():
            out[i] = None
    return out


def _rows(sa: SignalArrays | None, state: EngineState) -> list[dict[str, Any]]:
    if sa is None:
        return []
    tr, o = sa.trades, sa.out
    guard = _guard_reasons(sa, state)
    run_id, sym = state.run_id, state.symbol
    # one dict display per row, keys in SIGNAL_COLUMNS order; NaN floats are null (x != x)
    return [
        {"run_id": run_id, "symbol": sym, "seq": q, "ts_ms": t, "signal_type": SIGNALS[sg],
         "score": sc if sc == sc else None, "consistency": cs if cs == cs else None,
         "z_ofi": zo if zo == zo else None, "z_cvd": zc if zc == zc else None, "confirm": cf, "gating": ga,
         "decision_code": DECISIONS[dc], "guard_reason": gr, "regime": REGIMES[rg], "div_type": "none",
         "warmup": wu, "price": pr, "spread_bps": sp if sp == sp else None, "created_at": ca}
        for q, t, sg, sc, cs, zo, zc, cf, ga, dc, gr, rg, wu, pr, sp, ca in zip(
            _listed(tr.tid, tr.tid_null), _listed(tr.evt, tr.evt_null), o["sig"].tolist(), o["score"].tolist(),
            o["cons"].tolist(), sa.z_ofi.tolist(), sa.z_cvd.tolist(), o["confirm"].tolist(), o["gating"].tolist(),
            o["decision"].tolist(), guard, o["regime"].tolist(), (o["warm"] | o["fwarm"]).tolist(),
            _listed(tr.price, tr.price_null), sa.spread.tolist(), _listed(tr.recv, tr.recv_null), strict=True)
    ]

"""The live form of the engine: `step(state, trades_chunk, book_chunk) -> (state, rows)`.

Concatenating the rows of any chunking equals `compute_signals(compute_features(...))`.
A trade is only evaluated once the book stream has moved past its time (or the stream is
finalised), because a later book row could still be the latest one at or before it; such
trades wait in the state (`pending_trades`). The state pickles (`to_bytes` / `from_bytes`).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from alpha_assets.engine.config import EngineConfig, resolve_config
from alpha_assets.engine.pipeline import (
    BOOK_SCHEMA,
    TRADE_SCHEMA,
    features_initial_state,
    features_step,
    normalise,
    signals_initial_state,
    signals_step,
)


@dataclass
class EngineState:
    symbol: str
    cfg: EngineConfig
    run_id: str = ""
    features: dict[str, Any] = field(default_factory=dict)
    signals: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: {"trades_in": 0, "book_in": 0, "rows_out": 0,
                                                              "foreign_symbol_rows": 0})
    finalised: bool = False

    @property
    def pending_trades(self) -> int:
        return int(self.features["pending"].height)

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(blob: bytes) -> EngineState:
        state = pickle.loads(blob)
        if not isinstance(state, EngineState):
            raise TypeError(f"not an EngineState checkpoint: {type(state).__name__}")
        return state


def initial_state(symbol: str, cfg: Any = None, run_id: str = "") -> EngineState:
    c = resolve_config(cfg)
    sym = symbol.upper()
    return EngineState(symbol=sym, cfg=c, run_id=run_id, features=features_initial_state(sym, c),
                       signals=signals_initial_state(c))


def _own(state: EngineState, frame: pl.DataFrame | None, schema: dict[str, Any]) -> pl.DataFrame:
    norm = normalise(frame, schema)
    mine = norm.filter(pl.col("symbol") == state.symbol)
    state.counters["foreign_symbol_rows"] += norm.height - mine.height
    return mine


def step(state: EngineState, trades_chunk: pl.DataFrame | None, book_chunk: pl.DataFrame | None,
         final: bool = False) -> tuple[EngineState, pl.DataFrame]:
    """Advance the state by one chunk of trades and book rows of `state.symbol`; returns the
    Signals rows that became final. `final=True` releases every held-back trade."""
    trades = _own(state, trades_chunk, TRADE_SCHEMA)
    book = _own(state, book_chunk, BOOK_SCHEMA)
    state.counters["trades_in"] += trades.height
    state.counters["book_in"] += book.height
    feats = features_step(state.features, trades, book, state.cfg, final)
    rows = signals_step(state.signals, feats, state.cfg, state.run_id)
    state.counters["rows_out"] += rows.height
    state.finalised = state.finalised or final
    return state, rows


def flush(state: EngineState) -> tuple[EngineState, pl.DataFrame]:
    """End of stream: evaluate every trade still waiting for book data."""
    return step(state, None, None, final=True)

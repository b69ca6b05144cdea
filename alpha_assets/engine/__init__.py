"""The v13 signal engine: OFI, CVD, fusion, guards, strategy mode. Plain Python, no Dagster.

Stable entry points (DESIGN.md §5, docs/interfaces.md):
  ofi_features(book, cfg=None), cvd_features(trades, cfg=None), fuse(frame, cfg=None),
  compute_features(trades, book, cfg=None), compute_signals(features, cfg=None, run_id=""),
  initial_state(symbol, cfg), step(state, trades_chunk, book_chunk, final=False), flush(state),
  step_rows(state, trades_rows, book_rows, final=False) (the small-step form, no polars).
"""

from alpha_assets.engine.config import EngineConfig, EngineConfigError, resolve_config
from alpha_assets.engine.cvd import cvd_features
from alpha_assets.engine.fusion import fuse
from alpha_assets.engine.ofi import ofi_features
from alpha_assets.engine.pipeline import SIGNAL_COLUMNS, compute_features, compute_signals
from alpha_assets.engine.step import EngineState, flush, initial_state, step, step_rows

__all__ = [
    "EngineConfig", "EngineConfigError", "EngineState", "SIGNAL_COLUMNS", "compute_features", "compute_signals",
    "cvd_features", "flush", "fuse", "initial_state", "ofi_features", "resolve_config", "step", "step_rows",
]

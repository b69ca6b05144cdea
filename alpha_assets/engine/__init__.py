"""The v13 signal engine: OFI, CVD, fusion, guards, strategy mode. Plain Python, no Dagster.

Stable entry points (DESIGN.md §5, docs/interfaces.md):
  ofi_features(book, cfg=None), cvd_features(trades, cfg=None), fuse(frame, cfg=None),
  compute_features(trades, book, cfg=None), compute_signals(features, cfg=None, run_id=""),
  initial_state(symbol, cfg), step(state, trades_chunk, book_chunk, final=False), flush(state).
"""

from importlib import import_module
from typing import Any

from alpha_assets.engine.config import EngineConfig, EngineConfigError, resolve_config

# The numba kernels load on first use, not with the package: `alpha_assets.engine.config` (what a
# code location needs to validate its resources) then costs no JIT machinery at import.
_LAZY = {
    "cvd_features": "cvd", "fuse": "fusion", "ofi_features": "ofi", "SIGNAL_COLUMNS": "pipeline",
    "compute_features": "pipeline", "compute_signals": "pipeline", "EngineState": "step", "flush": "step",
    "initial_state": "step", "step": "step",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'alpha_assets.engine' has no attribute {name!r}")
    value = getattr(import_module(f"alpha_assets.engine.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "EngineConfig", "EngineConfigError", "EngineState", "SIGNAL_COLUMNS", "compute_features", "compute_signals",
    "cvd_features", "flush", "fuse", "initial_state", "ofi_features", "resolve_config", "step",
]

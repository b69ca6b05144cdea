"""The v13 signal engine: OFI, CVD, fusion, guards, strategy mode. Plain Python, no Dagster.

Stable entry points (DESIGN.md §5, docs/interfaces.md):
  ofi_features(book, cfg=None), cvd_features(trades, cfg=None), fuse(frame, cfg=None),
  compute_features(trades, book, cfg=None), compute_signals(features, cfg=None, run_id=""),
  initial_state(symbol, cfg), step(state, trades_chunk, book_chunk, final=False), flush(state),
  step_rows(state, trades_rows, book_rows, final=False) (the small-step form, no polars).
"""

import importlib.util
import sys
from importlib import import_module
from typing import Any

from alpha_assets.engine.config import EngineConfig, EngineConfigError, resolve_config

# The numba kernels load on first use, not with the package: `alpha_assets.engine.config` (what a
# code location needs to validate its resources) then costs no JIT machinery at import.
_LAZY = {
    "cvd_features": "cvd", "fuse": "fusion", "ofi_features": "ofi", "SIGNAL_COLUMNS": "pipeline",
    "compute_features": "pipeline", "compute_signals": "pipeline", "EngineState": "step", "flush": "step",
    "initial_state": "step", "step": "step", "step_rows": "step",
}


def _register_lazy_submodule(name: str) -> None:
    """`alpha_assets.engine.step` is both a submodule and a function of this package. Importing a
    submodule binds it on its package, which would hide the function; registered here (executed on
    first attribute use), the submodule is never "first imported" later, so `step` stays the function."""
    full = f"{__name__}.{name}"
    if full in sys.modules:
        return
    spec = importlib.util.find_spec(full)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    spec.loader.exec_module(module)


_register_lazy_submodule("step")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'alpha_assets.engine' has no attribute {name!r}")
    loaded = import_module(f"{__name__}.{module}")
    for other, home in _LAZY.items():  # bind every name of that module at once
        if home == module:
            globals()[other] = getattr(loaded, other)
    return globals()[name]


__all__ = [
    "EngineConfig", "EngineConfigError", "EngineState", "SIGNAL_COLUMNS", "compute_features", "compute_signals",
    "cvd_features", "flush", "fuse", "initial_state", "ofi_features", "resolve_config", "step", "step_rows",
]

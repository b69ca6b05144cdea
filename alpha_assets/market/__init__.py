"""Market data: exchange message parsing, captures, real recordings, the simulator, the landing zone.

`read_ws_capture` is a stable entry point (DESIGN.md §5). The heavier modules (the numba-backed
simulator, replay, cleaning, landing) load on first use, so importing the parsers stays cheap for
the live workers.
"""

from __future__ import annotations

import importlib
from typing import Any

from alpha_assets.market.binance import (
    BOOK_SCHEMA,
    BOOK_TICKER_SCHEMA,
    DEADLETTER_SCHEMA,
    TRADES_SCHEMA,
    ParseError,
    parse_message,
)
from alpha_assets.market.book_builder import DiffBookBuilder
from alpha_assets.market.capture import read_ws_capture

_LAZY = {
    "simulate_day": "simulator", "SimulatorStream": "simulator", "SimulatorConfig": "simulator",
    "load_replay": "replay", "replay_partitions": "replay",
    "clean_trades": "cleaning", "clean_book": "cleaning", "CleanResult": "cleaning",
    "preview_bars": "preview",
    "LandingWriter": "landing", "load_landing": "landing", "landing_partitions": "landing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"alpha_assets.market.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'alpha_assets.market' has no attribute {name!r}")


__all__ = [
    "BOOK_SCHEMA", "BOOK_TICKER_SCHEMA", "DEADLETTER_SCHEMA", "TRADES_SCHEMA", "DiffBookBuilder", "ParseError",
    "parse_message", "read_ws_capture", *_LAZY,
]

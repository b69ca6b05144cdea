"""As-of access to 5-level book snapshots (``book`` table of docs/interfaces.md), per symbol, in numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

LEVELS = 5
BOOK_COLS = ["event_time_ms"] + [f"{s}_{k}_{i}" for s in ("bid", "ask") for k in ("px", "qty")
                                 for i in range(1, LEVELS + 1)]


@dataclass(frozen=True)
class SymbolBook:
    ts: np.ndarray  # int64 event_time_ms, ascending
    bid_px: np.ndarray  # (n, 5)
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray

    def asof(self, ts_ms: int) -> int:
        """Index of the last snapshot at or before ts_ms, -1 when none."""
        return int(np.searchsorted(self.ts, ts_ms, side="right")) - 1


class BookIndex:
    def __init__(self, book: pl.DataFrame | None) -> None:
        self.books: dict[str, SymbolBook] = {}
        if book is None or book.height == 0:
            return
        missing = [c for c in ["symbol", *BOOK_COLS] if c not in book.columns]
        if missing:
            raise ValueError(f"book frame lacks columns {missing}")
        for (sym,), part in book.sort("symbol", "event_time_ms").group_by("symbol", maintain_order=True):
            def mat(prefix: str, p: pl.DataFrame = part) -> np.ndarray:
                cols = [f"{prefix}_{i}" for i in range(1, LEVELS + 1)]
                return p.select(cols).to_numpy().astype(np.float64)
            self.books[str(sym)] = SymbolBook(
                ts=part["event_time_ms"].to_numpy().astype(np.int64),
                bid_px=mat("bid_px"), bid_qty=mat("bid_qty"), ask_px=mat("ask_px"), ask_qty=mat("ask_qty"),
            )

    def get(self, symbol: str) -> SymbolBook | None:
        return self.books.get(symbol)

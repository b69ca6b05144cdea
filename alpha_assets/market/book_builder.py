"""Full order book from a REST depth snapshot plus the `@depth` diff stream (used by the capture reader)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from alpha_assets.market.binance import DepthDiff, DepthSnapshot, book_row
from alpha_assets.market.schema import LEVELS


@dataclass
class DiffBookBuilder:
    """Full order book from a REST snapshot plus the `@depth` diff stream.

    `apply` returns "applied", "stale" (u < snapshot id, dropped), "waiting" (no snapshot yet,
    or the first diff does not bridge the snapshot) or "gap" (pu != previous u: the book is no
    longer trustworthy; `needs_resync` stays True until the next `load_snapshot`).
    """

    symbol: str
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    snapshot_id: int | None = None
    last_update_id: int | None = None
    first_update_id: int | None = None
    prev_last_update_id: int | None = None
    event_time_ms: int | None = None
    recv_time_ms: int | None = None
    synced: bool = False
    gaps: int = 0
    stale: int = 0

    @property
    def needs_resync(self) -> bool:
        return self.snapshot_id is None

    def load_snapshot(self, snap: DepthSnapshot) -> None:
        self.bids = {px: q for px, q in snap.bids if q > 0}
        self.asks = {px: q for px, q in snap.asks if q > 0}
        self.snapshot_id = snap.last_update_id
        self.last_update_id = snap.last_update_id
        self.first_update_id = None
        self.prev_last_update_id = None
        self.event_time_ms = snap.event_time_ms
        self.synced = False

    def apply(self, diff: DepthDiff) -> str:
        if self.snapshot_id is None:
            return "waiting"
        if not self.synced:
            if diff.last_update_id < self.snapshot_id:
                self.stale += 1
                return "stale"
            if diff.first_update_id > self.snapshot_id:
                # the stream started after the snapshot: it cannot be bridged
                self._gap()
                return "gap"
            self.synced = True
        elif diff.prev_last_update_id != self.last_update_id:
            self._gap()
            return "gap"
        for book, levels in ((self.bids, diff.bids), (self.asks, diff.asks)):
            for px, qty in levels:
                if qty == 0:
                    book.pop(px, None)
                else:
                    book[px] = qty
        self.first_update_id = diff.first_update_id
        self.prev_last_update_id = diff.prev_last_update_id
        self.last_update_id = diff.last_update_id
        self.event_time_ms = diff.event_time_ms
        self.recv_time_ms = diff.recv_time_ms
        return "applied"

    def _gap(self) -> None:
        self.gaps += 1
        self.snapshot_id = None
        self.synced = False

    def best(self) -> tuple[float | None, float | None, float | None, float | None]:
        """(bid_px, bid_qty, ask_px, ask_qty) of the top of book."""
        bp = max(self.bids) if self.bids else None
        ap = min(self.asks) if self.asks else None
        return (
            bp,
            self.bids[bp] if bp is not None else None,
            ap,
            self.asks[ap] if ap is not None else None,
        )

    def top(self, n: int = LEVELS, event_time_ms: int | None = None) -> dict[str, Any]:
        """A canonical book row of the current state (n ≤ 5 levels, the rest null)."""
        bids = [(px, self.bids[px]) for px in heapq.nlargest(n, self.bids)]
        asks = [(px, self.asks[px]) for px in heapq.nsmallest(n, self.asks)]
        return book_row(
            self.symbol,
            event_time_ms if event_time_ms is not None else (self.event_time_ms or 0),
            self.recv_time_ms,
            self.first_update_id,
            self.last_update_id,
            self.prev_last_update_id,
            bids,
            asks,
        )

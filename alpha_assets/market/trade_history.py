"""What the exchange simulator's market produced, per symbol: every trade id in order (for loss
accounting), and the recent aggTrade payloads the REST backfill serves, as the real exchange keeps."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

HISTORY_MAX = 2_000_000  # trades kept per symbol for REST backfill
BACKFILL_LIMIT_MAX = 1000  # rows one REST page may ask for
REST_FIELDS = ("a", "p", "q", "f", "l", "T", "m", "E")  # an aggTrades REST row


class TradeHistory:
    def __init__(self, keep: int = HISTORY_MAX) -> None:
        self.keep = keep
        self.produced: dict[str, list[int]] = defaultdict(list)
        self._payloads: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)

    def record(self, symbol: str, payload: dict[str, Any]) -> int:
        """Remember an aggTrade payload the market produced; its trade id."""
        tid = int(payload["a"])
        self._payloads[symbol][tid] = payload
        self.produced[symbol].append(tid)
        return tid

    def trim(self, symbol: str) -> None:
        """Forget the oldest payloads beyond `keep` (their ids stay in `produced`)."""
        rows = self._payloads[symbol]
        if len(rows) > self.keep:
            for k in sorted(rows)[: len(rows) - self.keep]:
                del rows[k]

    def rest_page(self, symbol: str, from_id: int, limit: int) -> list[dict[str, Any]]:
        """Consecutive trades from `from_id` as REST rows; stops at the first id no longer (or not yet) kept."""
        rows = self._payloads[symbol]
        out = []
        for i in range(from_id, from_id + limit):
            row = rows.get(i)
            if row is None:
                break
            out.append({k: row[k] for k in REST_FIELDS})
        return out

    def feed_log(self) -> dict[str, list[tuple[int, int]]]:
        """(agg_trade_id, event_time_ms) of every trade produced, per symbol (-1: payload trimmed)."""
        out: dict[str, list[tuple[int, int]]] = {}
        for sym, ids in self.produced.items():
            rows = self._payloads.get(sym, {})
            out[sym] = [(t, int(rows[t]["E"]) if t in rows else -1) for t in ids]
        return out

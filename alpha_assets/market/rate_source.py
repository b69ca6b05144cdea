"""A synthetic market at a set event rate, for load benchmarks of the live path.

``RateSource(symbol, start_ms, trades_per_s, seed)`` serves (``advance_to``, like the simulator) evenly
spaced trades at ``trades_per_s`` and a 5-level book snapshot every ``book_ms`` (depth5@100ms), with a
seeded random-walk price; ``bursts`` raise the trade rate over windows ``(offset_s, duration_s,
trades_per_s)``. Event times are the exchange server's clock, as with every source it serves.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from alpha_assets.market.schema import BOOK_SCHEMA, INGEST_SEQ, LEVELS, TRADE_SCHEMA

# an exchange's rows: the arrival sequence is the harvester's to stamp
EXCHANGE_TRADES = {k: v for k, v in TRADE_SCHEMA.items() if k != INGEST_SEQ}
EXCHANGE_BOOK = {k: v for k, v in BOOK_SCHEMA.items() if k != INGEST_SEQ}
CHUNK_MS = 250  # market made ahead per polars frame


class RateSource:
    def __init__(self, symbol: str, start_ms: int, trades_per_s: float, seed: int = 7, *, price: float = 60_000.0,
                 tick: float = 0.1, book_ms: int = 100, bursts: tuple[tuple[float, float, float], ...] = ()) -> None:
        if trades_per_s < 0 or book_ms <= 0:
            raise ValueError("trades_per_s must be ≥ 0 and book_ms > 0")
        self.symbol, self.start_ms, self.rate, self.book_ms = symbol.upper(), int(start_ms), float(trades_per_s), book_ms
        self.bursts = tuple(sorted(bursts))
        self.position_ms = self.start_ms
        self.rng = np.random.default_rng(seed)
        self.price, self.tick = price, tick
        self.next_trade_id = 1_000_000
        self.next_update_id = 5_000_000
        self._empty = pl.DataFrame(schema=EXCHANGE_TRADES), pl.DataFrame(schema=EXCHANGE_BOOK)
        self._pending = list(self._empty)  # made, not yet served
        self._made_to = self.start_ms

    def trades_before(self, t_ms: int) -> float:
        """Trades due in [start, t): the rate integrated over time, bursts included."""
        s = max(0.0, (t_ms - self.start_ms) / 1000)
        n = self.rate * s
        for off, dur, rate in self.bursts:
            n += (rate - self.rate) * min(max(0.0, s - off), dur)
        return n

    def advance_to(self, t_ms: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Rows with event time in (previous t, t]. They are made CHUNK_MS at a time and sliced: building
        two polars frames per call cost the exchange several ms per tick per symbol, which starved
        its sending (and its REST side) at a 10 ms tick."""
        lo, hi = self.position_ms, int(t_ms)
        if hi <= lo:
            return self._empty
        self.position_ms = hi
        while self._made_to < hi:
            end = max(hi, self._made_to + CHUNK_MS)
            tr, bk = self._make(self._made_to, end)
            self._made_to = end
            self._pending = [pl.concat([a, b]) if a.height else b for a, b in zip(self._pending, (tr, bk), strict=True)]
        out = []
        for k, f in enumerate(self._pending):
            cut = int(np.searchsorted(f["event_time_ms"].to_numpy(), hi, side="right"))
            out.append(f.slice(0, cut))
            self._pending[k] = f.slice(cut)
        return out[0], out[1]

    def _make(self, lo: int, hi: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        n = math.floor(self.trades_before(hi)) - math.floor(self.trades_before(lo))
        times = np.floor(np.linspace(lo, hi, n, endpoint=False)).astype(np.int64) + 1 if n else np.empty(0, np.int64)
        steps = self.rng.choice(np.array([-1.0, 0.0, 1.0]), size=n, p=[0.3, 0.4, 0.3]) * self.tick
        start_price = self.price
        prices = np.round(self.price + np.cumsum(steps), 1)
        if n:
            self.price = float(prices[-1])
        ids = np.arange(self.next_trade_id, self.next_trade_id + n, dtype=np.int64)
        self.next_trade_id += n
        trades = pl.DataFrame({
            "symbol": [self.symbol] * n, "event_time_ms": times, "trade_time_ms": times, "recv_time_ms": times,
            "agg_trade_id": ids, "price": prices, "qty": np.round(self.rng.exponential(0.01, n) + 0.001, 3),
            "is_buyer_maker": self.rng.random(n) < 0.5,
        }, schema=EXCHANGE_TRADES)
        first = (lo // self.book_ms + 1) * self.book_ms
        bt = np.arange(first, hi + 1, self.book_ms, dtype=np.int64)
        m = len(bt)
        uid = np.arange(self.next_update_id, self.next_update_id + 10 * m, 10, dtype=np.int64)
        self.next_update_id += 10 * m
        cols: dict[str, object] = {"symbol": [self.symbol] * m, "event_time_ms": bt, "recv_time_ms": bt,
                                   "first_update_id": uid - 9, "last_update_id": uid, "prev_last_update_id": uid - 10}
        # each snapshot quotes around the last trade before it (the price at the window's start if none)
        at = np.searchsorted(times, bt, side="right") - 1
        mid = np.where(at >= 0, prices[np.maximum(at, 0)] if n else start_price, start_price)
        for k in range(1, LEVELS + 1):
            cols[f"bid_px_{k}"] = np.round(mid - k * self.tick, 1)
            cols[f"ask_px_{k}"] = np.round(mid + k * self.tick, 1)
            cols[f"bid_qty_{k}"] = np.round(self.rng.uniform(0.1, 5.0, m), 3)
            cols[f"ask_qty_{k}"] = np.round(self.rng.uniform(0.1, 5.0, m), 3)
        return trades, pl.DataFrame(cols, schema=EXCHANGE_BOOK)

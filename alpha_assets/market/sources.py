"""Market sources of the exchange simulator: each `advance_to(t_ms) -> (trades, book)` gives what
the market produced up to `t_ms` (the seeded simulator, or a recorded capture replayed)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl

from alpha_assets.figures import whole


class MarketSource(Protocol):
    def advance_to(self, t_ms: int) -> tuple[pl.DataFrame, pl.DataFrame]: ...


class ReplaySource:
    """Replays recorded trades/book shifted so the first event lands at ``start_ms``, at ``speed``×."""

    def __init__(self, trades: pl.DataFrame, book: pl.DataFrame, start_ms: int, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        first = min(whole(f["event_time_ms"].min()) for f in (trades, book) if f.height)
        self.start_ms, self.first, self.speed = start_ms, first, speed
        self.position_ms = start_ms - 1  # windows are (lo, hi]: the first event lands at start_ms

        def shifted(f: pl.DataFrame) -> pl.DataFrame:
            if not f.height:
                return f
            t = ((pl.col("event_time_ms") - first) / speed).round().cast(pl.Int64) + start_ms
            out = f.with_columns(t.alias("event_time_ms"))
            if "trade_time_ms" in out.columns:
                out = out.with_columns(pl.col("event_time_ms").alias("trade_time_ms"))
            return out.sort("event_time_ms", maintain_order=True)

        self.trades, self.book = shifted(trades), shifted(book)
        # sorted by time: a window is a slice found by bisection, not a scan of the whole recording
        self._times = [f["event_time_ms"].to_numpy() for f in (self.trades, self.book)]

    def advance_to(self, t_ms: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        lo, hi = self.position_ms, int(t_ms)
        self.position_ms = max(lo, hi)
        out = []
        for f, t in zip((self.trades, self.book), self._times, strict=True):
            a, b = (int(np.searchsorted(t, x, side="right")) for x in (lo, hi))
            out.append(f.slice(a, max(0, b - a)))
        return out[0], out[1]




def simulator_sources(symbols: list[str], seed: int, start_ms: int) -> dict[str, MarketSource]:
    import datetime as dt

    from alpha_assets.market.simulator import SimulatorStream, simulate_day

    date = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC).date().isoformat()
    out: dict[str, MarketSource] = {}
    for s in symbols:
        simulate_day(s.upper(), date, seed)  # warm the day cache now, not on the serving loop
        out[s.upper()] = SimulatorStream(s.upper(), seed=seed, start_ms=start_ms)
    return out


def replay_sources(capture: str, symbols: list[str], start_ms: int, speed: float = 1.0) -> dict[str, MarketSource]:
    """Sources replaying a real Binance WS capture (``read_ws_capture``) per symbol."""
    from alpha_assets.market.capture import read_ws_capture

    frames = read_ws_capture(capture)
    out: dict[str, MarketSource] = {}
    for s in symbols:
        s = s.upper()
        trades = frames["trades"].filter(pl.col("symbol") == s)
        book = frames["book"].filter(pl.col("symbol") == s)
        if trades.height or book.height:
            out[s] = ReplaySource(trades, book, start_ms, speed)
    if not out:
        raise ValueError(f"capture {capture} has none of the symbols {symbols}")
    return out



"""Small partitions for exercising the profile: a window of the seeded simulator's day, landed in
the landing zone exactly as a soak's harvester lands live data (minute files of trades and
5-level book snapshots). `market_source=auto` then reads the partition from the landing zone, so
the whole batch graph runs on real-shaped data at a fraction of a full day's cost (a simulated
BTCUSDT day is 2.5 M events; ten minutes of its busy hour are about 20 k).

The partition is not marked complete: the landing sensor keeps ignoring it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alpha_assets.market.landing import LandingWriter
from alpha_assets.market.simulator import MINUTE_MS, SimulatorStream, day_start_ms


def land_simulated_window(data_root: Path, date: str, symbol: str, minutes: int, start_minute: int = 600,
                          seed: int = 7) -> int:
    """Land `minutes` of the simulator's `date` from `start_minute` (default 10:00 UTC, an active
    hour). Returns the number of trades landed."""
    if start_minute < 0 or minutes < 1 or start_minute + minutes > 24 * 60:
        raise ValueError(f"window {start_minute}+{minutes} minutes does not fit in a day")
    t0 = day_start_ms(date) + start_minute * MINUTE_MS
    stream = SimulatorStream(symbol, seed=seed, start_ms=t0 - 1)  # events in (t0 - 1, ...]
    writer = LandingWriter(data_root, symbol)
    trades = 0
    for m in range(minutes):
        minute_start = t0 + m * MINUTE_MS
        trade_rows, book_rows = stream.advance_to(minute_start + MINUTE_MS - 1)
        hhmm = dt.datetime.fromtimestamp(minute_start / 1000, dt.UTC).strftime("%H%M")
        writer.write_minute("trades", date, hhmm, trade_rows)
        writer.write_minute("book", date, hhmm, book_rows)
        trades += trade_rows.height
    return trades

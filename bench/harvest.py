"""Events/s for simulating one BTCUSDT-like day, for serving it incrementally (the live exchange
server's source, in 100 ms steps), and for harvesting it (cleaning + preview bars).

Run: .venv/bin/python bench/harvest.py [--symbol BTCUSDT] [--date 2024-03-01] [--repeat 3]
Prints the best of `repeat` runs; the first simulation also pays numba's (cached) compile.
"""

from __future__ import annotations

import argparse
import time

from alpha_assets.market.cleaning import clean_book, clean_trades
from alpha_assets.market.preview import preview_bars
from alpha_assets.market.simulator import (
    SimulatorStream,
    _latent_day,
    _simulate_day_cached,
    day_start_ms,
    simulate_day,
)


def best_of(repeat: int, fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--date", default="2024-03-01")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    def simulate() -> dict:
        _simulate_day_cached.cache_clear()  # measure generation, not the caches
        _latent_day.cache_clear()
        return simulate_day(args.symbol, args.date, seed=7)

    sim_s, day = best_of(args.repeat, simulate)
    trades, book = day["trades"], day["book"]  # type: ignore[index]
    events = trades.height + book.height

    def harvest() -> tuple:
        t, b = clean_trades(trades), clean_book(book)
        return t, b, preview_bars(t.frame, b.frame)

    def stream_hour() -> int:
        _latent_day.cache_clear()
        t0 = day_start_ms(args.date) + 14 * 3_600_000  # the busiest hour
        stream, n = SimulatorStream(args.symbol, seed=7, start_ms=t0), 0
        for k in range(1, 36_001):
            tr, bk = stream.advance_to(t0 + 100 * k)
            n += tr.height + bk.height
        return n

    stream_s, stream_events = best_of(1, stream_hour)
    harvest_s, (t, b, bars) = best_of(args.repeat, harvest)  # type: ignore[misc]
    print(f"day: {args.symbol} {args.date}: {trades.height:,} trades + {book.height:,} book snapshots = {events:,} events")
    print(f"simulate: {sim_s:.2f} s  -> {events / sim_s:,.0f} events/s")
    print(f"stream: 1 h (14:00-15:00 UTC) in 36,000 steps of 100 ms: {stream_events:,} events in {stream_s:.2f} s"
          f"  -> {stream_events / stream_s:,.0f} events/s ({3600 / stream_s:,.0f}x real time)")
    print(f"harvest (clean trades + book, 1 s preview bars): {harvest_s:.2f} s  -> {events / harvest_s:,.0f} events/s"
          f"  ({bars.height:,} bars, dead letters {t.deadletters.height + b.deadletters.height})")


if __name__ == "__main__":
    main()

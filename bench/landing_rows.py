"""Cost of the lander's row isolation: `LandingWriter.land_rows` (each row checked against the
canonical schema, bad ones dead-lettered) against writing the same minute as one frame without
checks (`write_minute`, what the lander did before), on simulator trades and books.

    .venv/bin/python bench/landing_rows.py [--minutes 3] [--repeat 3]

Prints µs per row for trades and book rows (best of --repeat), one core, into a temporary
directory (each write merges into a fresh file: the cost of a minute landed once).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

import polars as pl  # noqa: E402

from alpha_assets.market.landing import LandingWriter, minute_parts  # noqa: E402
from alpha_assets.market.schema import BOOK_SCHEMA, TRADE_SCHEMA  # noqa: E402
from alpha_assets.market.simulator import day_start_ms, simulate_day  # noqa: E402

SYM, DATE = "BTCUSDT", "2024-03-04"


def minutes(n: int) -> list[tuple[int, dict[str, list[dict]]]]:
    day = simulate_day(SYM, DATE, seed=3)
    t0 = day_start_ms(DATE) + 14 * 3_600_000
    out = []
    for k in range(n):
        lo, hi = t0 + k * 60_000, t0 + (k + 1) * 60_000 - 1
        out.append((lo, {kind: day[kind].filter(pl.col("event_time_ms").is_between(lo, hi)).to_dicts()
                         for kind in ("trades", "book")}))
    return out


def measure(data: list[tuple[int, dict[str, list[dict]]]], kind: str, checked: bool) -> float:
    schema = TRADE_SCHEMA if kind == "trades" else BOOK_SCHEMA
    rows = sum(len(m[kind]) for _, m in data)
    with tempfile.TemporaryDirectory() as tmp:
        w = LandingWriter(tmp, SYM)
        start = time.perf_counter_ns()
        for minute, m in data:
            if checked:
                res = w.land_rows(kind, m[kind], fallback_ms=minute)
                assert not res.failed and not res.deadletters
            else:
                frame = pl.DataFrame({c: [r.get(c) for r in m[kind]] for c in schema}, schema=schema)
                w.write_minute(kind, *minute_parts(minute), frame)
        return (time.perf_counter_ns() - start) / 1000 / rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = minutes(args.minutes)
    for kind in ("trades", "book"):
        n = sum(len(m[kind]) for _, m in data)
        plain = min(measure(data, kind, False) for _ in range(args.repeat))
        checked = min(measure(data, kind, True) for _ in range(args.repeat))
        print(f"{kind:6s} rows={n:7d}  write_minute {plain:6.2f} µs/row   land_rows {checked:6.2f} µs/row   "
              f"(+{checked - plain:.2f} µs/row for isolation)")


if __name__ == "__main__":
    main()

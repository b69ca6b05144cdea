"""Parity of the live sinks from what they hold: both read back for the run and compared key by key
(``alpha_assets.sinks.parity.compare_sinks``), never from their input counters (equal by construction).

While the run goes on, the JSONL sink holds a minute once it is published, and the writer publishes a
minute only after both sinks have its rows; so SQLite is compared on the minutes JSONL has published.
After the drain every minute is published and the whole run is compared.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from alpha_assets.layout import RuntimeLayout
from alpha_assets.sinks.parity import ParityResult, compare_sinks
from alpha_assets.sinks.readers import read_jsonl_signals, read_sqlite_signals

MINUTE_MS = 60_000
PARITY_EVERY_S = 60.0  # reading both sinks back costs ~1 s per 100k rows: the gauge refreshes this often


def compare_live_sinks(runtime: Path, run_id: str, *, published_only: bool = True) -> ParityResult:
    """Both sinks of ``run_id`` read back and compared; ``published_only``: SQLite rows of the minutes
    JSONL has published (per symbol), the rest of SQLite is not due in JSONL yet."""
    jsonl = read_jsonl_signals(runtime, run_id=run_id)
    sqlite = read_sqlite_signals(RuntimeLayout(Path(runtime)).sqlite_file(), run_id=run_id)
    if published_only:
        minutes = jsonl.select("symbol", (pl.col("ts_ms") // MINUTE_MS).alias("minute")).unique()
        sqlite = sqlite.with_columns((pl.col("ts_ms") // MINUTE_MS).alias("minute")).join(
            minutes, on=["symbol", "minute"], how="semi").drop("minute")
    return compare_sinks(jsonl, sqlite)


class SinkParity:
    """``ratio()``: the Pushgateway's parity_diff_ratio, from the sinks' contents (refreshed every
    ``every_s``; None before the first comparison or when the run writes one sink only)."""

    def __init__(self, runtime: Path, run_id: str, sink: str, every_s: float = PARITY_EVERY_S) -> None:
        self.runtime, self.run_id, self.dual, self.every_s = Path(runtime), run_id, sink == "dual", every_s
        self._next = 0.0
        self._last: float | None = None

    def ratio(self, *, final: bool = False) -> float | None:
        if not self.dual:
            return None
        if final or time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every_s
            try:
                self._last = compare_live_sinks(self.runtime, self.run_id, published_only=not final).max_rel_diff
            except Exception:  # a sink being rotated under the reader: the next refresh reads it
                pass
        return self._last

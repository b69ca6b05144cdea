"""JSONL signal sink over MinuteSpool, one spool per symbol:

    <runtime>/spool/signal/<SYM>/signals_<YYYYMMDD_HHMM>.part
        → <runtime>/ready/signal/<SYM>/signals_<YYYYMMDD_HHMM>.jsonl

Lines are encoded in bulk by polars (shortest round-trip floats; NaN → null, as in SQLite) and
keyed on (run_id, symbol, seq), so a replayed frame doubles nothing. Orphaned parts of every
symbol found on disk are recovered when the sink starts.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alpha_assets.layout import RuntimeLayout
from alpha_assets.sinks import rows
from alpha_assets.sinks.base import FlushPolicy, SinkWriteError, dead_letter
from alpha_assets.sinks.config import SinkConfig
from alpha_assets.sinks.schema import conform, split_bad_keys
from alpha_assets.sinks.spool import MINUTE_MS, MinuteSpool, RecoveryReport, SpoolBusyError

KIND, PREFIX = "signal", "signals"
BULK_ROWS = 100_000
SAFE_SYMBOL = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # becomes a directory name


class JsonlSignalSink:
    kind = "jsonl"

    def __init__(self, runtime_dir: Path, cfg: SinkConfig | None = None, *,
                 clock: Callable[[], float] | None = None) -> None:
        self.cfg = cfg or SinkConfig(kind="jsonl")
        self.runtime_dir = Path(runtime_dir)
        self._policy = FlushPolicy(self.cfg.batch_n, self.cfg.flush_ms, clock)
        self._spools: dict[str, MinuteSpool] = {}
        self._c: dict[str, int] = dict.fromkeys(("rows_in", "rejected", "flushes"), 0)
        self._closed = False
        self.recovered: dict[str, RecoveryReport] = {}
        spool_root = RuntimeLayout(self.runtime_dir).spool_dir(KIND)
        if spool_root.is_dir():  # recover every symbol's orphaned parts now, not when it next trades
            for sym_dir in sorted(p for p in spool_root.iterdir() if p.is_dir()):
                if any(sym_dir.glob(f"{PREFIX}_*.part")):
                    try:
                        self.recovered[sym_dir.name] = self._spool(sym_dir.name).last_recovery
                    except SpoolBusyError:
                        continue  # another process is writing that symbol now: its parts are not orphans

    def _spool(self, symbol: str) -> MinuteSpool:
        sym = symbol.upper()
        sp = self._spools.get(sym)
        if sp is None:
            # a signal's key fixes its event time, so keys are looked up in their own minute only
            sp = MinuteSpool.for_layout(self.runtime_dir, KIND, sym, PREFIX, "ts_ms", ("run_id", "symbol", "seq"),
                                        self.cfg.fsync, lateness_minutes=self.cfg.lateness_minutes,
                                        index_scope="minute")
            self._spools[sym] = sp
        return sp

    def write(self, df: pl.DataFrame) -> None:
        if self._closed:
            raise SinkWriteError("write after close()")
        if rows.is_small(df):
            self._write_rows(rows.canonical_rows(df))
            return
        frame = conform(df)
        frame, bad = split_bad_keys(frame)
        self._c["rejected"] += dead_letter(self.runtime_dir, self.kind, "null key", bad)
        symbols = frame.get_column("symbol").unique(maintain_order=True).to_list()  # a handful: checked in Python
        if not all(SAFE_SYMBOL.fullmatch(sym) for sym in symbols):
            unsafe = ~pl.col("symbol").str.contains(SAFE_SYMBOL.pattern)
            self._c["rejected"] += dead_letter(self.runtime_dir, self.kind, "symbol unusable as a directory name",
                                               frame.filter(unsafe))
            frame = frame.filter(~unsafe)
            symbols = [sym for sym in symbols if SAFE_SYMBOL.fullmatch(sym)]
        self._c["rows_in"] += frame.height
        if frame.height == 0:
            return
        if len(symbols) == 1:  # every batch write and most live ones: no grouping pass
            self._append(symbols[0], frame)
        else:
            for (sym,), part in frame.group_by("symbol", maintain_order=True):
                self._append(str(sym), part)
        ts = frame.get_column("ts_ms")
        if self._policy.add(frame.height, ts.min(), ts.max()):  # type: ignore[arg-type]
            self.flush()

    def _write_rows(self, batch: list[tuple[Any, ...]]) -> None:
        """A small write, row by row (same files, bytes and counters as the frame path)."""
        bad = [r for r in batch if rows.has_null_key(r)]
        if bad:
            self._c["rejected"] += dead_letter(self.runtime_dir, self.kind, "null key", rows.frame_of(bad))
            batch = [r for r in batch if not rows.has_null_key(r)]
        unsafe = [r for r in batch if not SAFE_SYMBOL.fullmatch(r[rows.SYMBOL_POS])]
        if unsafe:
            self._c["rejected"] += dead_letter(self.runtime_dir, self.kind, "symbol unusable as a directory name",
                                               rows.frame_of(unsafe))
            batch = [r for r in batch if SAFE_SYMBOL.fullmatch(r[rows.SYMBOL_POS])]
        self._c["rows_in"] += len(batch)
        if not batch:
            return
        by_symbol: dict[str, list[tuple[Any, ...]]] = {}
        for r in batch:
            by_symbol.setdefault(r[rows.SYMBOL_POS], []).append(r)
        for sym, part in by_symbol.items():
            self._spool(sym).append_encoded(
                (rows.key_of(r), r[rows.TS_POS] // MINUTE_MS, rows.encode(r)) for r in part)
        ts = [r[rows.TS_POS] for r in batch]
        if self._policy.add(len(batch), min(ts), max(ts)):
            self.flush()

    def _append(self, symbol: str, frame: pl.DataFrame) -> None:
        # in slices: a day's write encodes ~BULK_ROWS rows at a time, not the whole day in memory
        for part in frame.iter_slices(BULK_ROWS):
            self._append_slice(symbol, part)

    def _append_slice(self, symbol: str, part: pl.DataFrame) -> None:
        spool = self._spool(symbol)
        blocks = _minute_blocks(part)
        if blocks is not None:
            run_id, sym = part.get_column("run_id")[0], part.get_column("symbol")[0]
            if spool.append_blocks((run_id, sym), blocks) is not None:
                return
        # per line: several run ids, repeated keys, replays or minutes out of order
        lines = part.write_ndjson().encode().split(b"\n")[: part.height]  # drop the final empty piece
        keys = zip(part.get_column("run_id").to_list(), part.get_column("symbol").to_list(),
                   part.get_column("seq").to_list(), strict=True)
        minutes = (part.get_column("ts_ms") // MINUTE_MS).to_list()
        spool.append_encoded(zip(keys, minutes, lines, strict=True))

    def advance_to(self, event_time_ms: int) -> None:
        """Publish minutes older than this event time in every symbol (idle symbols included)."""
        for sp in self._spools.values():
            sp.advance_to(event_time_ms)

    def flush(self) -> None:
        for sp in self._spools.values():
            sp.flush()
        self._c["flushes"] += 1
        self._policy.reset()

    def close(self) -> None:
        if self._closed:
            return
        for sp in self._spools.values():
            sp.close()
        self._closed = True

    def counters(self) -> dict[str, Any]:
        totals: dict[str, int] = {}
        for sp in self._spools.values():
            for k, v in sp.counters.as_dict().items():
                totals[k] = totals.get(k, 0) + v
        return {**self._c, **{f"spool_{k}": v for k, v in totals.items()}, "pending": self._policy.pending,
                "symbols": sorted(self._spools)}


def _minute_blocks(part: pl.DataFrame) -> list[tuple[int, list[Any], memoryview]] | None:
    """One block per event-time minute (minute, seqs, JSON lines) when the rows share one run id, have
    distinct seqs and come in minute order — the shape of every batch and live write; else None.
    Each minute's rows are encoded by polars in one call: the same bytes as line by line."""
    if part.height == 0 or part.get_column("run_id").n_unique() != 1:
        return None
    seq = part.get_column("seq")
    if seq.n_unique() != part.height:
        return None
    minutes = (part.get_column("ts_ms") // MINUTE_MS).to_numpy()
    if minutes.size > 1 and bool((minutes[1:] < minutes[:-1]).any()):
        return None
    cuts = [0, *(np.flatnonzero(minutes[1:] != minutes[:-1]) + 1).tolist(), part.height]
    blocks = []
    for lo, hi in itertools.pairwise(cuts):
        chunk = part.slice(lo, hi - lo)
        buf = io.BytesIO()
        chunk.write_ndjson(buf)
        blocks.append((int(minutes[lo]), chunk.get_column("seq").to_list(), buf.getbuffer()))
    return blocks

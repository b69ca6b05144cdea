"""Parity of one run and symbol of a day, compared a slice of keys at a time.

The SQLite side is read whole (one Arrow stream from the bulk process, in key order) while the JSONL
side is parsed a few minute files at a time: a JSONL slice and the SQLite rows of the same seq range
are compared, then dropped. Parsing a day of JSONL at once, and comparing two whole days whose
chunks do not line up, each held about as much memory again as the day itself.

Exact, not approximate: for one run_id and symbol the key is seq, so slices bounded by seq split
both sinks into disjoint key ranges, and `compare_tallies` adds their tallies up to what
`compare_sinks` reports for the whole day (samples included: the slices come in key order). The
JSONL slices must hold increasing, non-overlapping seq ranges without nulls (the writer's order);
when they do not, the whole day is compared at once, as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from alpha_assets.sinks.parity import ParityResult, Tally, compare_sinks, compare_tallies, tally_sinks
from alpha_assets.sinks.readers import SqliteReadBeside, empty_signals, jsonl_files, read_jsonl_files

FILES_PER_SLICE = 60  # the JSONL sink publishes a file per minute: an hour per slice


def compare_day(runtime_dir: Path, db_path: Path, *, run_id: str, symbol: str, date: str | dt.date,
                files_per_slice: int = FILES_PER_SLICE) -> ParityResult:
    """`compare_sinks` of both sinks' rows of `run_id`, `symbol` and `date`, slice by slice."""
    # the bulk process reads the SQLite day while the first JSONL slices are parsed
    pending = SqliteReadBeside(db_path, run_id, symbol, date)
    files = jsonl_files(runtime_dir, symbol, date)
    groups = [files[i:i + files_per_slice] for i in range(0, len(files), files_per_slice)]
    try:
        slices = _jsonl_slices(groups, run_id, symbol, date)
        first = next(slices, None)
    finally:
        pending.join()
    sqlite = pending.rows()
    tallies = _tally_slices(first, slices, sqlite)
    if tallies is None:  # the JSONL slices are not in seq order: the whole day at once
        return compare_sinks(read_jsonl_files(files, run_id, symbol, date), sqlite)
    return compare_tallies(tallies)


def _jsonl_slices(groups: list[list[Path]], run_id: str, symbol: str, date: str | dt.date) -> Iterator[pl.DataFrame]:
    for group in groups:
        frame = read_jsonl_files(group, run_id, symbol, date)
        if frame.height:
            yield frame.rechunk()  # one chunk: lined up with the SQLite slice without copying both


def _tally_slices(first: pl.DataFrame | None, rest: Iterator[pl.DataFrame], sqlite: pl.DataFrame) -> list[Tally] | None:
    """Tallies of consecutive seq ranges, each bounded below by its JSONL slice's first seq (the first
    slice also takes everything below, the last everything above). None: the slices overlap or hold a
    null seq, or SQLite holds a null seq, so seq ranges would not split the day exactly."""
    if first is None:
        return [tally_sinks(empty_signals(), sqlite)]
    seq = sqlite.get_column("seq")
    if seq.null_count():
        return None
    tallies: list[Tally] = []
    lo: int | None = None  # the current slice's lower seq bound (None: unbounded)
    current: pl.DataFrame | None = first
    while current is not None:
        if current.get_column("seq").null_count():
            return None
        following = next(rest, None)
        hi: int | None = None
        if following is not None:
            hi = int(following.get_column("seq").min())  # type: ignore[arg-type]
            if int(current.get_column("seq").max()) >= hi:  # type: ignore[arg-type]
                return None
        start = 0 if lo is None else int(seq.search_sorted(lo, "left"))
        stop = sqlite.height if hi is None else int(seq.search_sorted(hi, "left"))
        tallies.append(tally_sinks(current, sqlite.slice(start, stop - start)))
        lo, current = hi, following
    return tallies

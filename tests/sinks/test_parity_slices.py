"""compare_day (parity an hour of JSONL at a time) reports exactly what compare_sinks reports for the
whole day, on clean sinks and on sabotaged ones (rows missing on either side, changed values,
duplicated lines, and JSONL slices out of seq order, which fall back to the whole day)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.sinks import SinkConfig, compare_sinks, make_sink, read_jsonl_signals, read_sqlite_signals
from alpha_assets.sinks.parity_slices import compare_day
from alpha_assets.sinks.synthetic import synthetic_signals

N = 60_000
RUN, SYMBOL, DATE = "run-1", "BTCUSDT", "2024-01-07"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rt = tmp_path_factory.mktemp("clean")
    sink = make_sink(SinkConfig(kind="dual", fsync="never"), rt)
    for chunk in synthetic_signals(N, seed=5).iter_slices(5_003):
        sink.write(chunk)
    sink.close()
    return rt


def jsonl_day(rt: Path) -> list[Path]:
    return sorted((rt / "ready" / "signal" / SYMBOL).glob("signals_20240107_*.jsonl"))


def drop_sqlite_rows(rt: Path) -> None:
    with sqlite3.connect(rt / "signals.db") as con:
        con.execute("DELETE FROM signals WHERE symbol = ? AND seq % 97 = 3", (SYMBOL,))
        con.execute("UPDATE signals SET score = score + 1 WHERE symbol = ? AND seq % 89 = 5", (SYMBOL,))


def drop_and_duplicate_jsonl_lines(rt: Path) -> None:
    files = jsonl_day(rt)
    middle = files[len(files) // 2]
    lines = middle.read_text().splitlines(keepends=True)
    middle.write_text("".join(lines[::2]) + lines[1])  # every other line gone, one line twice
    last = files[-1]
    last.write_text(last.read_text().replace('"signal_type":"neutral"', '"signal_type":"buy"', 3))


def jsonl_out_of_order(rt: Path) -> None:
    files = jsonl_day(rt)
    first_line = files[0].read_text().splitlines(keepends=True)[0]
    with files[-1].open("a") as fh:
        fh.write(first_line)  # an early seq in the last file: slices overlap


@pytest.mark.parametrize("sabotage", [None, drop_sqlite_rows, drop_and_duplicate_jsonl_lines, jsonl_out_of_order])
def test_sliced_parity_equals_the_whole_day(clean: Path, tmp_path: Path,
                                            sabotage: Callable[[Path], None] | None) -> None:
    rt = tmp_path / "rt"
    shutil.copytree(clean, rt)
    if sabotage is not None:
        sabotage(rt)
    whole = compare_sinks(read_jsonl_signals(rt, run_id=RUN, symbol=SYMBOL, date=DATE),
                          read_sqlite_signals(rt / "signals.db", run_id=RUN, symbol=SYMBOL, date=DATE))
    assert len(jsonl_day(rt)) >= 4  # a slice per file: several slices
    sliced = compare_day(rt, rt / "signals.db", run_id=RUN, symbol=SYMBOL, date=DATE, files_per_slice=1)
    assert sliced.model_dump() == whole.model_dump()
    assert (whole.max_rel_diff == 0.0) == (sabotage is None)


def test_a_day_without_jsonl_rows_is_compared_with_all_sqlite_rows(clean: Path, tmp_path: Path) -> None:
    rt = tmp_path / "rt"
    shutil.copytree(clean, rt)
    for f in jsonl_day(rt):
        f.unlink()
    res = compare_day(rt, rt / "signals.db", run_id=RUN, symbol=SYMBOL, date=DATE)
    n = read_sqlite_signals(rt / "signals.db", run_id=RUN, symbol=SYMBOL, date=DATE).height
    assert res.total_a == 0 and res.total_b == res.only_in_b == n > 0
    assert res.model_dump() == compare_sinks(pl.DataFrame(schema=read_jsonl_signals(rt).schema),
                                             read_sqlite_signals(rt / "signals.db", run_id=RUN, symbol=SYMBOL,
                                                                 date=DATE)).model_dump()

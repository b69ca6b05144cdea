"""Signal sink throughput: rows/s for jsonl, sqlite and dual over synthetic Signals rows, and a bare
`sqlite3.executemany` into an equivalent table as the baseline; prints the ratios, the read-back +
parity rate, the SQLite writer candidates, and the cost of one small (live-sized) write.

    .venv/bin/python bench/sinks.py [--rows 2000000] [--chunk 50000] [--fsync rotate] [--seed 7]

SQLite candidates (same rows, same table, one transaction per chunk): the baseline; the sink as it
runs (a transaction of BULK_ROWS rows or more goes to the bulk process: ADBC's SQLite driver in a child
process, fed Arrow IPC, ingesting into a temporary table and INSERT OR IGNORE ... SELECT from it); and
the sink's own sqlite3 path (multi-row VALUES, run_id and symbol bound once) forced for every size.
ADBC runs in a child because it bundles its own SQLite library: two libraries in one process do not
see each other's POSIX locks, and this process also opens the file through Python's sqlite3.
DuckDB's sqlite extension is a download (none offline; the PyPI wheel duckdb-ext-sqlite is built for
DuckDB 1.4, refused by 2.x).

Each sink gets the frame in `--chunk`-row writes (like a batch asset or a busy live worker;
batch_n=500 so every write is flushed as one transaction). The baseline gets the same rows as
ready-made tuples (conversion timed separately) in the same chunks, one transaction each, with
the same table, key, index and PRAGMAs (WAL, synchronous per --fsync). Read-back and parity are timed too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # shared 2-core machine: one core

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from alpha_assets.layout import RuntimeLayout
from alpha_assets.sinks import (  # noqa: E402
    SIGNAL_COLUMNS,
    SinkConfig,
    compare_sinks,
    make_sink,
)
from alpha_assets.sinks import sqlite as sqlite_module  # noqa: E402
from alpha_assets.sinks.readers import read_both_sinks  # noqa: E402
from alpha_assets.sinks.sqlite import (  # noqa: E402
    SYNCHRONOUS,
    TABLE,
    create_table_sql,
    insert_sql,
)
from alpha_assets.sinks.synthetic import synthetic_signals  # noqa: E402


def run_sink(kind: str, frame, chunk: int, fsync: str, root: Path) -> float:  # type: ignore[no-untyped-def]
    rt = root / kind
    t = time.perf_counter()
    sink = make_sink(SinkConfig(kind=kind, fsync=fsync), rt)
    for part in frame.iter_slices(chunk):
        sink.write(part)
    sink.close()
    return time.perf_counter() - t


def fresh_table(db: Path, fsync: str, page_size: int = 4096) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"PRAGMA page_size={page_size}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[fsync]}")
    conn.execute(create_table_sql())
    conn.execute(f"CREATE INDEX {TABLE}_run_ts ON {TABLE} (run_id, ts_ms)")  # the sink's table has it too
    return conn


def run_sqlite3_path(frame, chunk: int, fsync: str, root: Path) -> float:  # type: ignore[no-untyped-def]
    """The SQLite sink with its sqlite3 path for every transaction (the bulk process never used)."""
    saved = sqlite_module.BULK_ROWS
    sqlite_module.BULK_ROWS = frame.height + 1
    try:
        return run_sink("sqlite", frame, chunk, fsync, root / "sqlite3_path")
    finally:
        sqlite_module.BULK_ROWS = saved


def run_baseline(frame, chunk: int, fsync: str, root: Path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(seconds converting to tuples, seconds in executemany + commit); one chunk in memory at a time."""
    conn = fresh_table(root / "baseline.db", fsync)
    sql = insert_sql()
    convert = insert = 0.0
    for part in frame.iter_slices(chunk):
        t = time.perf_counter()
        rows = list(zip(*[c.to_list() for c in part.select(SIGNAL_COLUMNS).get_columns()], strict=True))
        t1 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        t2 = time.perf_counter()
        convert += t1 - t
        insert += t2 - t1
    conn.close()
    return convert, insert


def small_writes(frame, fsync: str, root: Path, n_writes: int = 2_000) -> None:  # type: ignore[no-untyped-def]
    """Mean cost of one live-sized write (the signal worker writes 1-50 rows at a time; batch_n=500,
    flush_ms=500 decide when SQLite commits), per sink kind and write size."""
    for size in (1, 20, 50):
        parts = list(frame.head(size * n_writes).iter_slices(size))
        cells = []
        for kind in ("jsonl", "sqlite", "dual"):
            rt = root / f"small_{kind}_{size}"
            sink = make_sink(SinkConfig(kind=kind, fsync=fsync), rt)
            t = time.perf_counter()
            for part in parts:
                sink.write(part)
            sink.close()
            cells.append(f"{kind} {(time.perf_counter() - t) / len(parts) * 1e6:7.0f} us")
            shutil.rmtree(rt, ignore_errors=True)
        print(f"{f'write of {size} rows':<24}" + "   ".join(cells) + "   (mean per write, incl. commits)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--chunk", type=int, default=50_000)
    ap.add_argument("--fsync", default="rotate", choices=["always", "rotate", "never"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-sinks-", dir=args.dir))
    try:
        t = time.perf_counter()
        frame = synthetic_signals(args.rows, seed=args.seed)
        print(f"rows={frame.height:,} chunk={args.chunk:,} fsync={args.fsync} "
              f"(synthetic in {time.perf_counter() - t:.2f}s; max rows sharing one ms: "
              f"{frame.group_by('ts_ms').len()['len'].max()})")
        convert, insert = run_baseline(frame, args.chunk, args.fsync, root)
        base_rps = frame.height / insert
        base_all_rps = frame.height / (convert + insert)
        print(f"{'baseline executemany':<24}{base_rps:>14,.0f} rows/s   (insert only {insert:.2f}s)")
        print(f"{'baseline incl. to tuples':<24}{base_all_rps:>14,.0f} rows/s   (conversion {convert:.2f}s)")
        for kind in ("jsonl", "sqlite", "dual"):
            secs = run_sink(kind, frame, args.chunk, args.fsync, root)
            rps = frame.height / secs
            print(f"{kind + ' sink':<24}{rps:>14,.0f} rows/s   {secs:6.2f}s   "
                  f"ratio to baseline insert {rps / base_rps:5.2f}  (incl. conversion {rps / base_all_rps:5.2f})")
        plain = run_sqlite3_path(frame, args.chunk, args.fsync, root)
        print(f"{'sqlite sink, sqlite3 only':<24}{frame.height / plain:>14,.0f} rows/s   {plain:6.2f}s   "
              f"ratio to baseline insert {frame.height / plain / base_rps:5.2f}  (its path for small transactions)")
        small_writes(frame, args.fsync, root)
        rows = frame.height
        keys = frame.select("run_id", "symbol").unique().sort("run_id", "symbol").rows()
        del frame  # read-back and parity hold two copies; keep peak memory down
        tj = tp = 0.0
        matched, worst, passed = 0, 0.0, True
        for run_id, symbol in keys:  # parity_diff reads one run and symbol (and date) at a time
            t = time.perf_counter()
            j, s = read_both_sinks(root / "dual", RuntimeLayout(root / "dual").sqlite_file(), run_id=run_id,
                                   symbol=symbol)
            tj += time.perf_counter() - t
            t = time.perf_counter()
            res = compare_sinks(j, s)
            tp += time.perf_counter() - t
            del j, s
            matched, worst, passed = matched + res.matched, max(worst, res.max_rel_diff), passed and res.passed(0.0)
        print(f"read back: both sinks {tj:.2f}s; parity {tp:.2f}s -> "
              f"max_rel_diff={worst} matched={matched:,} passed={passed} ({len(keys)} run/symbol reads)")
        print(f"{'read-back + parity':<24}{rows / (tj + tp):>14,.0f} rows/s   as parity_diff runs it: "
              f"both sinks read at once per run and symbol (SQLite by the bulk process), then compared "
              f"({tj + tp:.2f}s)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

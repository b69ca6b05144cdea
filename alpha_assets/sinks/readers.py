"""Read the sinks back as polars frames with identical schema (Signals columns), sorted by key.

Nothing is deduplicated here: a duplicate in a sink is a fault parity must see.
`date` is `YYYY-MM-DD` (UTC) of the event time `ts_ms`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import polars as pl

from alpha_assets.layout import RuntimeLayout
from alpha_assets.sinks.schema import KEY, SIGNAL_COLUMNS, SIGNAL_SCHEMA, STRONG_TYPES, sqlite_type
from alpha_assets.sinks.sqlite import TABLE
from alpha_assets.sinks.sqlite_bulk import read_frame

DAY_MS = 86_400_000
FETCH_CHUNK = 100_000
BULK_READ_ROWS = 100_000  # from this many rows a read goes through the bulk process (its start-up pays off)


def _day_bounds(date: str | dt.date) -> tuple[int, int]:
    day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    return start, start + DAY_MS


def _filter(df: pl.LazyFrame, run_id: str | None, symbol: str | None, date: str | dt.date | None) -> pl.LazyFrame:
    if run_id is not None:
        df = df.filter(pl.col("run_id") == run_id)
    if symbol is not None:
        df = df.filter(pl.col("symbol") == symbol)
    if date is not None:
        lo, hi = _day_bounds(date)
        df = df.filter((pl.col("ts_ms") >= lo) & (pl.col("ts_ms") < hi))
    return df


def key_ordered(df: pl.DataFrame) -> pl.DataFrame:
    """`df` sorted by key; a frame of one run and symbol with seq already increasing (a partition read
    back from either sink) is returned without the copy a sort makes."""
    if df.height > 1:
        one = df.select((pl.col("run_id").n_unique() == 1).alias("r"), (pl.col("symbol").n_unique() == 1).alias("s"),
                        (pl.col("seq").diff().slice(1) > 0).all().alias("q"),
                        (pl.col("seq").null_count() == 0).alias("n")).row(0)
        if not all(one):
            return df.sort(KEY)
    return df


def empty_signals() -> pl.DataFrame:
    return pl.DataFrame(schema=SIGNAL_SCHEMA)


def jsonl_files(runtime_dir: Path, symbol: str | None = None, date: str | dt.date | None = None) -> list[Path]:
    base = RuntimeLayout(Path(runtime_dir)).signal_ready
    if not base.is_dir():
        return []
    sym = symbol.upper() if symbol else "*"
    day = "*" if date is None else _day_label(date)
    return sorted(base.glob(f"{sym}/signals_{day}_*.jsonl"))


def _day_label(date: str | dt.date) -> str:
    day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
    return day.strftime("%Y%m%d")


def read_jsonl_signals(runtime_dir: Path, run_id: str | None = None, symbol: str | None = None,
                       date: str | dt.date | None = None) -> pl.DataFrame:
    """Every published line under `<runtime>/ready/signal/` (partial `.part` files are not data yet)."""
    return read_jsonl_files(jsonl_files(runtime_dir, symbol, date), run_id, symbol, date)


def read_jsonl_files(files: list[Path], run_id: str | None = None, symbol: str | None = None,
                     date: str | dt.date | None = None) -> pl.DataFrame:
    """The rows of these JSONL files that pass the filter, sorted by key."""
    if not files:
        return empty_signals()
    lf = pl.scan_ndjson(files, schema=SIGNAL_SCHEMA)
    return key_ordered(_filter(lf, run_id, symbol, date).select(SIGNAL_COLUMNS).collect())


def _prime_row(columns: list[str]) -> str:
    """A first row with a value of each column's type: the bulk reader's driver infers a column's Arrow
    type from the first batch, and a column that is null all through it would be guessed wrong. Its
    seq is null, which no stored row's is (NOT NULL key), so it is told apart and dropped."""
    literal = {"TEXT": "''", "REAL": "0.0", "INTEGER": "0"}
    return ", ".join(f"{'NULL' if c == 'seq' else literal[sqlite_type(SIGNAL_SCHEMA[c])]} AS {c}" for c in columns)


def read_sqlite_signals(db_path: Path, run_id: str | None = None, symbol: str | None = None,
                        date: str | dt.date | None = None) -> pl.DataFrame:
    """Rows of table `signals` (read-only; a missing file or table reads as empty). A big read comes as
    Arrow from the bulk process, a small one through sqlite3."""
    path = Path(db_path)
    if not path.exists():
        return empty_signals()
    where: list[str] = []
    args: list[str | int] = []
    if run_id is not None:
        where.append("run_id = ?")
        args.append(run_id)
    if symbol is not None:
        where.append("symbol = ?")
        args.append(symbol)
    if date is not None:
        lo, hi = _day_bounds(date)
        # with run and symbol known, `+ts_ms` keeps SQLite on the primary key, already in key order: on the
        # (run_id, ts_ms) index it would look every row up by key and then sort them (4x slower for a day)
        ts = "+ts_ms" if run_id is not None and symbol is not None else "ts_ms"
        where += [f"{ts} >= ?", f"{ts} < ?"]
        args += [lo, hi]
    # a filtered key column holds one value: it is added once below instead of read for every row
    fixed = {k: v for k, v in (("run_id", run_id), ("symbol", symbol)) if v is not None}
    fetched = [c for c in SIGNAL_COLUMNS if c not in fixed]
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    rows = f"SELECT {', '.join(fetched)} FROM {TABLE}{where_sql} ORDER BY {', '.join(KEY)}"
    n = _count(path, where_sql, args)
    if n is None:
        return empty_signals()
    if n < BULK_READ_ROWS:
        df = _fetch_rows(path, rows, args, fetched)
    else:
        df = _fetch_bulk(path, rows, args, fetched)
    # SQLite has no boolean: 0/1 integers are read as Int64, then cast
    df = df.with_columns(*(pl.col(k).cast(pl.Boolean) for k in fetched if SIGNAL_SCHEMA[k] == pl.Boolean),
                         *(pl.lit(v, dtype=pl.Utf8).alias(k) for k, v in fixed.items())).select(SIGNAL_COLUMNS)
    return key_ordered(df)  # same collation as the JSONL reader, whatever SQLite's is


def _raw_schema(fetched: list[str]) -> pl.Schema:
    return pl.Schema({k: (pl.Int64() if SIGNAL_SCHEMA[k] == pl.Boolean else SIGNAL_SCHEMA[k]) for k in fetched})


def _fetch_bulk(path: Path, rows: str, args: list[str | int], fetched: list[str]) -> pl.DataFrame:
    """A big read: Arrow batches from the bulk process (C fetches; Python's sqlite3 makes an object per value)."""
    df = read_frame(path, TABLE, f"SELECT {_prime_row(fetched)} UNION ALL SELECT * FROM ({rows})", args)
    if df.height == 0 or df.get_column("seq")[0] is not None:
        raise RuntimeError(f"{path}: the bulk read did not start with its typed first row")
    return df.slice(1).cast(_raw_schema(fetched))


def _fetch_rows(path: Path, rows: str, args: list[str | int], fetched: list[str]) -> pl.DataFrame:
    """A small read through Python's sqlite3 (no process to start), fetched in chunks to bound memory."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        cur = conn.execute(rows, args)
        parts = []
        while chunk := cur.fetchmany(FETCH_CHUNK):
            parts.append(pl.DataFrame(chunk, schema=_raw_schema(fetched), orient="row"))
    finally:
        conn.close()
    return pl.concat(parts, rechunk=False) if parts else pl.DataFrame(schema=_raw_schema(fetched))


def _count(path: Path, where_sql: str, args: list[str | int]) -> int | None:
    """Rows the read will return; None: no table yet."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)).fetchone():
            return None
        return int(conn.execute(f"SELECT COUNT(*) FROM {TABLE}{where_sql}", args).fetchone()[0])
    finally:
        conn.close()


def count_sqlite_signals(db_path: Path, run_id: str | None = None) -> int:
    """Rows of table `signals` (of one run), counted by SQLite; a missing file or table counts 0."""
    path = Path(db_path)
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)).fetchone():
            return 0
        where, args = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
        return int(conn.execute(f"SELECT COUNT(*) FROM {TABLE} {where}", args).fetchone()[0])
    finally:
        conn.close()


def sqlite_aggregates(db: Path, run_id: str) -> tuple[pl.DataFrame, dict[str, int], int] | None:
    """(per minute: minute_ms, n, strong; count per type; confirmed) of a run, computed by SQLite: the
    live report does not load an hour of rows to count them. None: no file or no table yet."""
    if not db.exists():
        return None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        per_min = con.execute(
            f"SELECT ts_ms / 60000 * 60000, COUNT(*), SUM(signal_type IN (?, ?)) FROM {TABLE} WHERE run_id = ? "
            "GROUP BY 1 ORDER BY 1", (*STRONG_TYPES, run_id)).fetchall()
        by_type = dict(con.execute(f"SELECT signal_type, COUNT(*) FROM {TABLE} WHERE run_id = ? GROUP BY 1 ORDER BY 1",
                                   (run_id,)).fetchall())
        confirm = con.execute(f"SELECT COALESCE(SUM(confirm), 0) FROM {TABLE} WHERE run_id = ?",
                              (run_id,)).fetchone()[0]
    except sqlite3.OperationalError:  # no table yet
        return None
    finally:
        con.close()
    frame = pl.DataFrame(per_min, schema={"minute_ms": pl.Int64, "n": pl.Int64, "strong": pl.Int64}, orient="row")
    return frame, by_type, int(confirm)


class SqliteReadBeside:
    """`read_sqlite_signals` on a thread of its own: a big read is done by the bulk process (no GIL
    held here) while this one parses the JSONL side. `join()` in a finally, then `rows()`."""

    def __init__(self, db_path: Path, run_id: str | None = None, symbol: str | None = None,
                 date: str | dt.date | None = None) -> None:
        self._out: pl.DataFrame | BaseException | None = None

        def read() -> None:
            try:
                self._out = read_sqlite_signals(db_path, run_id=run_id, symbol=symbol, date=date)
            except BaseException as exc:  # re-raised in the caller's thread by rows()
                self._out = exc

        self._thread = threading.Thread(target=read, name="sqlite-sink-read")
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def rows(self) -> pl.DataFrame:
        self.join()
        if isinstance(self._out, BaseException):
            raise self._out
        assert self._out is not None
        return self._out


def read_both_sinks(runtime_dir: Path, db_path: Path, run_id: str | None = None, symbol: str | None = None,
                    date: str | dt.date | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(JSONL rows, SQLite rows) of the same filter, read at the same time: parity waits for the
    slower read, not both."""
    sqlite = SqliteReadBeside(db_path, run_id, symbol, date)
    try:
        jsonl = read_jsonl_signals(runtime_dir, run_id=run_id, symbol=symbol, date=date)
    finally:
        sqlite.join()
    return jsonl, sqlite.rows()

"""SQLite signal sink: WAL, PRIMARY KEY (run_id, symbol, seq), INSERT OR IGNORE.

v13 keyed rows on (run_id, ts_ms, symbol), so two trades in one millisecond collapsed into one
row; here every evaluation has its own key (seq = agg_trade_id) and a replay doubles nothing.

Rows are buffered until the flush policy says so (`batch_n` rows or `flush_ms` of event time /
injected clock) and then written in one transaction. A locked, busy or full database is retried
with exponential backoff (counted in `retries` and `errors`); the rows stay in memory until they
are written, and after `retry_max` retries `SinkWriteError` is raised (the rows are still pending,
so a later `flush()` can write them).
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import polars as pl

from alpha_assets.sinks import rows
from alpha_assets.sinks.base import FlushPolicy, SinkWriteError, dead_letter
from alpha_assets.sinks.config import SinkConfig
from alpha_assets.sinks.schema import KEY, SIGNAL_COLUMNS, SIGNAL_SCHEMA, conform, split_bad_keys, sqlite_type
from alpha_assets.sinks.sqlite_bulk import BulkWriter

TABLE = "signals"
RETRIABLE = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR}
SYNCHRONOUS = {"always": "FULL", "rotate": "NORMAL", "never": "OFF"}
INSERT_CHUNK = 50_000  # rows converted to Python values at a time inside one transaction (bounds memory)
COMMIT_ROWS = 200_000  # a big flush commits this many rows at a time (see flush)
SHARED = ("run_id", "symbol")  # the key prefix every batch write has one value of
UNSHARED = tuple(c for c in SIGNAL_COLUMNS if c not in SHARED)
ROWS_PER_STATEMENT = 50  # multi-row VALUES: one statement step per 50 rows (950 parameters, limit 32766)
PAGE_SIZE = 16_384  # new databases: fewer, larger B-tree pages make bulk inserts ~1.5x cheaper
BULK_ROWS = 20_000  # a transaction of at least this many rows goes through the bulk process (sqlite_bulk)


class SqliteSchemaError(RuntimeError):
    """An existing `signals` table does not have the expected key or columns."""


def create_table_sql(table: str = TABLE) -> str:
    cols = ",\n  ".join(
        f"{name} {sqlite_type(dtype)}{' NOT NULL' if name in KEY else ''}" for name, dtype in SIGNAL_SCHEMA.items()
    )
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols},\n  PRIMARY KEY ({', '.join(KEY)})\n) WITHOUT ROWID"


def insert_sql(table: str = TABLE, rows: int = 1) -> str:
    one = f"({', '.join('?' for _ in SIGNAL_COLUMNS)})"
    return f"INSERT OR IGNORE INTO {table} ({', '.join(SIGNAL_COLUMNS)}) VALUES {', '.join([one] * rows)}"


def shared_prefix_insert_sql(rows: int, table: str = TABLE) -> str:
    """Multi-row INSERT OR IGNORE whose rows share run_id (?1) and symbol (?2), bound once per statement
    instead of once per row; the other columns of row i are ?(3 + i*17) ...: the same rows and values."""
    rest = len(UNSHARED)
    values = ", ".join("(?1, ?2, " + ", ".join(f"?{3 + i * rest + j}" for j in range(rest)) + ")" for i in range(rows))
    return f"INSERT OR IGNORE INTO {table} ({', '.join(SHARED + UNSHARED)}) VALUES {values}"


def key_sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in key order (stable, so the first of two rows with one key stays first and INSERT OR IGNORE
    keeps the same one): B-tree inserts then append instead of seeking. A frame of one run and symbol
    in seq order (every batch and live write) is returned as it is."""
    if frame.height < 2:
        return frame
    one_prefix = frame.select(pl.col("run_id").n_unique() == 1, pl.col("symbol").n_unique() == 1).row(0)
    if all(one_prefix) and frame.get_column("seq").is_sorted():
        return frame
    return frame.sort(list(KEY), maintain_order=True)


def flat_values(frame: pl.DataFrame, columns: tuple[str, ...] = SIGNAL_COLUMNS) -> list[Any]:
    """Row-major parameter values of a frame (`columns` in order). Booleans are bound as the 0/1 SQLite
    stores for them anyway: Python's sqlite3 binds an exact int without the adapter lookup a bool takes."""
    width = len(columns)
    flat: list[Any] = [None] * (frame.height * width)
    for j, col in enumerate(frame.select(columns).get_columns()):
        flat[j::width] = (col.cast(pl.Int64) if col.dtype == pl.Boolean else col).to_list()
    return flat


def _insert_values(conn: sqlite3.Connection, flat: list[Any]) -> None:
    """Row-major values of every column: ROWS_PER_STATEMENT rows a statement, then the rest."""
    width = len(SIGNAL_COLUMNS) * ROWS_PER_STATEMENT
    full = len(flat) - len(flat) % width
    conn.executemany(insert_sql(rows=ROWS_PER_STATEMENT), (flat[i:i + width] for i in range(0, full, width)))
    if full < len(flat):
        conn.execute(insert_sql(rows=(len(flat) - full) // len(SIGNAL_COLUMNS)), flat[full:])


def _insert_shared_prefix(conn: sqlite3.Connection, part: pl.DataFrame) -> None:
    """Rows of one run and symbol: those two bound once per statement (see shared_prefix_insert_sql)."""
    prefix = [part.get_column(c)[0] for c in SHARED]
    flat = flat_values(part, UNSHARED)
    width = len(UNSHARED) * ROWS_PER_STATEMENT
    full = len(flat) - len(flat) % width
    conn.executemany(shared_prefix_insert_sql(ROWS_PER_STATEMENT),
                     (prefix + flat[i:i + width] for i in range(0, full, width)))
    if full < len(flat):
        conn.execute(shared_prefix_insert_sql((len(flat) - full) // len(UNSHARED)), prefix + flat[full:])


def _retriable(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in RETRIABLE
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg or "full" in msg


class SqliteSignalSink:
    """Signals → `<runtime>/signals.db` table `signals`. See the module docstring."""

    kind = "sqlite"

    def __init__(self, db_path: Path, cfg: SinkConfig | None = None, *,
                 clock: Callable[[], float] | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg or SinkConfig(kind="sqlite")
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._sleep = sleep  # backoff waits only; never used in computation
        self._policy = FlushPolicy(self.cfg.batch_n, self.cfg.flush_ms, clock)
        self._pending: list[pl.DataFrame | list[tuple[Any, ...]]] = []  # frames, or rows of small writes
        self._c: dict[str, int] = dict.fromkeys(
            ("rows_in", "rows_written", "duplicates_skipped", "rejected", "batches", "retries", "errors",
             "gave_up"), 0)
        self._closed = False
        self.conn = sqlite3.connect(self.db_path, timeout=self.cfg.busy_timeout_ms / 1000.0,
                                    isolation_level=None, check_same_thread=False)
        self._with_retry(self._init_db)
        # big transactions: Arrow batches bound in C by a child process (on the other core, too)
        self._bulk = BulkWriter(self.db_path, TABLE, (
            f"PRAGMA busy_timeout={self.cfg.busy_timeout_ms}", f"PRAGMA cache_size=-{self.cfg.sqlite_cache_kib}",
            f"PRAGMA synchronous={SYNCHRONOUS[self.cfg.fsync]}", "PRAGMA temp_store=MEMORY"))

    # ------------------------------------------------------------------ setup
    def _init_db(self) -> None:
        self.conn.execute(f"PRAGMA busy_timeout={self.cfg.busy_timeout_ms}")
        if self.conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            self.conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only a new, empty file takes it
        self.conn.execute(f"PRAGMA cache_size=-{self.cfg.sqlite_cache_kib}")
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SqliteSchemaError(f"{self.db_path}: cannot switch to WAL (journal_mode={mode})")
        self.conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[self.cfg.fsync]}")
        self.conn.execute(create_table_sql())
        self.conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_run_ts ON {TABLE} (run_id, ts_ms)")
        self._check_schema()

    def _check_schema(self) -> None:
        info = self.conn.execute(f"PRAGMA table_info({TABLE})").fetchall()
        cols = {row[1] for row in info}
        pk = tuple(row[1] for row in sorted((r for r in info if r[5] > 0), key=lambda r: r[5]))
        if pk != KEY:
            raise SqliteSchemaError(
                f"{self.db_path}: table {TABLE} has PRIMARY KEY {pk}, expected {KEY} (a v13 database keyed on "
                "(run_id, ts_ms, symbol) collapses trades sharing a millisecond; write to a new file)")
        missing = [c for c in SIGNAL_COLUMNS if c not in cols]
        if missing:
            raise SqliteSchemaError(f"{self.db_path}: table {TABLE} lacks columns {missing}")

    # ------------------------------------------------------------------ writing
    def write(self, df: pl.DataFrame) -> None:
        if self._closed:
            raise SinkWriteError("write after close()")
        if rows.is_small(df):  # a live-sized write: Python rows, no polars plan per call
            batch = rows.canonical_rows(df)
            bad = [r for r in batch if rows.has_null_key(r)]
            if bad:
                self._c["rejected"] += dead_letter(self.db_path.parent, self.kind, "null key", rows.frame_of(bad))
                batch = [r for r in batch if not rows.has_null_key(r)]
            self._c["rows_in"] += len(batch)
            if not batch:
                return
            self._pending.append(batch)
            ts = [r[rows.TS_POS] for r in batch]
            if self._policy.add(len(batch), min(ts), max(ts)):
                self.flush()
            return
        frame, null_keys = split_bad_keys(conform(df))
        self._c["rejected"] += dead_letter(self.db_path.parent, self.kind, "null key", null_keys)
        self._c["rows_in"] += frame.height
        if frame.height == 0:
            return
        if frame.height >= BULK_ROWS:
            self._bulk.start()  # its start-up overlaps what happens before the flush
        self._pending.append(frame)
        ts_ms = frame.get_column("ts_ms")
        lo, hi = cast(int | None, ts_ms.min()), cast(int | None, ts_ms.max())  # None when every ts_ms is null
        if self._policy.add(frame.height, lo, hi):
            self.flush()

    def advance_to(self, event_time_ms: int) -> None:
        """Event-time heartbeat: pending rows older than flush_ms (by this time) are written now."""
        if self._policy.add(0, None, event_time_ms):
            self.flush()

    def flush(self) -> None:
        """Write every pending row, in one transaction up to COMMIT_ROWS rows (retrying a locked/full database)."""
        if not self._pending:
            return
        small = [p for p in self._pending if isinstance(p, list)]
        pending: list[tuple[Any, ...]] = []
        if len(small) == len(self._pending):  # only small writes pending: stay in Python
            pending = sorted((r for p in small for r in p), key=rows.key_of)  # stable: first stays first
            values: Any = [v for r in pending for v in r]
            n = len(pending)
        else:
            frame = key_sorted(pl.concat([rows.frame_of(p) if isinstance(p, list) else p for p in self._pending],
                                         how="vertical"))
            # A day's flush commits COMMIT_ROWS at a time so another writer of the file (a parallel
            # partition, the live worker) gets the lock between commits instead of waiting out its retry
            # budget; rows not committed yet stay pending, and a replay of committed ones is ignored.
            done = 0
            while frame.height - done > COMMIT_ROWS:
                part = frame.slice(done, COMMIT_ROWS)
                self._pending = [frame.slice(done)]  # kept until the commit
                self._count(self._with_retry(functools.partial(self._insert, part)), part.height)
                done += COMMIT_ROWS
            values, n = frame.slice(done), frame.height - done
        self._pending = [values if isinstance(values, pl.DataFrame) else pending]  # kept until the commit
        self._count(self._with_retry(lambda: self._insert(values)), n)
        self._c["batches"] += 1
        self._pending = []
        self._policy.reset()

    def _count(self, inserted: int, offered: int) -> None:
        self._c["rows_written"] += inserted
        self._c["duplicates_skipped"] += offered - inserted

    def _insert(self, data: pl.DataFrame | list[Any]) -> int:
        """One transaction: a frame converted INSERT_CHUNK rows at a time, or ready row-major values;
        a frame of BULK_ROWS or more goes to the bulk process whole (key-sorted by flush, like here)."""
        if isinstance(data, pl.DataFrame) and data.height >= BULK_ROWS:
            return self._bulk.insert(data)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")  # take the write lock up front: fail fast, retry whole batch
        try:
            before = conn.total_changes
            if isinstance(data, list):
                _insert_values(conn, data)
            else:
                for start in range(0, data.height, INSERT_CHUNK):
                    # key-sorted (flush), so each run and symbol is one stretch of rows, inserted in order
                    for part in data.slice(start, INSERT_CHUNK).partition_by(SHARED, maintain_order=True):
                        if not any(part.get_column(c).null_count() for c in SHARED):
                            _insert_shared_prefix(conn, part)
                        else:  # a null key part (not reachable from write(): those are dead letters)
                            _insert_values(conn, flat_values(part))
            conn.execute("COMMIT")
            return conn.total_changes - before
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _with_retry(self, action: Callable[[], Any]) -> Any:
        delay = self.cfg.retry_backoff_ms / 1000.0
        attempt = 0
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                self._c["errors"] += 1
                if not _retriable(exc):
                    raise
                if attempt >= self.cfg.retry_max:
                    self._c["gave_up"] += 1
                    raise SinkWriteError(
                        f"{self.db_path}: {exc} after {attempt} retries (retry_max={self.cfg.retry_max}); "
                        f"{self.pending_rows} rows are still pending in memory") from exc
                attempt += 1
                self._c["retries"] += 1
                self._sleep(delay)
                delay = min(delay * 2, self.cfg.retry_backoff_max_ms / 1000.0)

    @property
    def pending_rows(self) -> int:
        return sum(len(p) if isinstance(p, list) else p.height for p in self._pending)

    def counters(self) -> dict[str, Any]:
        return {**self._c, "pending": self.pending_rows, "db_path": str(self.db_path)}

    def close(self) -> None:
        if self._closed:
            return
        self.flush()  # raises (and keeps the connection) if the rows cannot be written
        self._bulk.close()
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self.conn.close()
        self._closed = True

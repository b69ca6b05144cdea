"""The SQLite bulk process: moves Arrow batches into and out of the signals database through ADBC's
SQLite driver, which binds and fetches columns in C (Python's sqlite3 costs ~2 µs per row of Python
objects on each side).

It runs as a child process of `alpha_assets.sinks.sqlite_bulk` and nowhere else: the driver brings
its own SQLite library, and two SQLite libraries in one process do not see each other's POSIX locks
(a lock is per process, and each library keeps its own table of them), so the file is safe only when
every process opens it through one library. Started as a script (`python -P <this file>`), it imports
no project code, only pyarrow and the driver, so it is up in a fraction of a second.

Protocol on stdin/stdout, one request at a time; a request or reply is a JSON line, then `nbytes`
bytes of Arrow IPC stream when it says so (or, for a read, the stream up to its end marker):

    {"op": "insert", "nbytes": N} + stream   ->  {"ok": true, "inserted": n}
    {"op": "read", "sql": s, "params": [...]} ->  {"ok": true, "stream": true} + stream to its end
    any failure                                ->  {"ok": false, "error": "<SQLite's message>"}

An insert is one transaction (BEGIN IMMEDIATE): the batch goes into an untyped temporary table and
from there `INSERT OR IGNORE INTO <table> SELECT ...` in row order, so values get the table's column
affinities exactly as if bound one row at a time, and a key already stored (or repeated in the batch)
keeps its first row. End of stdin ends the process.
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

import adbc_driver_manager as adbc
import adbc_driver_sqlite
import pyarrow as pa

STAGING = "bulk_staging"  # a temporary table (temp schema) of this connection
READ_BATCH_ROWS = "65536"  # rows per fetched Arrow batch (the driver infers types on the first one)


class BulkDatabase:
    """One ADBC connection (the driver manager's own API: its DB-API layer would import polars too)."""

    def __init__(self, db: str, table: str, pragmas: list[str]) -> None:
        self.table = table
        self.db = adbc_driver_sqlite.connect(db)
        self.conn = adbc.AdbcConnection(self.db)  # autocommit; transactions are explicit statements below
        self._staged_columns: list[str] | None = None
        for pragma in pragmas:
            self.run(pragma)

    def _statement(self) -> adbc.AdbcStatement:
        return adbc.AdbcStatement(self.conn)

    def run(self, sql: str) -> int:
        """A statement without result rows: the rows it changed."""
        with self._statement() as stmt:
            stmt.set_sql_query(sql)
            return int(stmt.execute_update())

    def _staging(self, columns: list[str]) -> None:
        if self._staged_columns != columns:  # untyped columns: values stay exactly as the driver bound them
            self.run(f"DROP TABLE IF EXISTS temp.{STAGING}")
            self.run(f"CREATE TABLE temp.{STAGING} ({', '.join(columns)})")
            self._staged_columns = columns

    def insert(self, batch: pa.Table) -> int:
        columns = list(batch.column_names)
        self._staging(columns)
        self.run("BEGIN IMMEDIATE")  # the write lock up front: a busy database fails here, before any work
        try:
            with self._statement() as stmt:
                stmt.set_options(**{adbc.StatementOptions.INGEST_TARGET_TABLE.value: STAGING,
                                    adbc.StatementOptions.INGEST_MODE.value: adbc.INGEST_OPTION_MODE_APPEND,
                                    adbc.StatementOptions.INGEST_TEMPORARY.value: "true"})
                stmt.bind_stream(batch.to_reader())
                stmt.execute_update()
            names = ", ".join(columns)
            inserted = self.run(
                f"INSERT OR IGNORE INTO {self.table} ({names}) SELECT {names} FROM temp.{STAGING} ORDER BY rowid")
            self.run(f"DELETE FROM temp.{STAGING}")
            self.run("COMMIT")
            return inserted
        except BaseException:
            try:
                self.run("ROLLBACK")
            except Exception:  # no transaction left to roll back (SQLite already did)
                pass
            raise

    def read(self, sql: str, params: list[Any], out: BinaryIO) -> None:
        """Reply, then stream the rows as they are fetched (neither side holds the whole result as Arrow).
        A failure after the reply ends the process: the parent sees the stream cut and the stderr."""
        with self._statement() as stmt:
            stmt.set_options(**{"adbc.sqlite.query.batch_rows": READ_BATCH_ROWS})
            stmt.set_sql_query(sql)
            if params:
                stmt.bind(pa.record_batch([pa.array([v]) for v in params], names=[str(i) for i in range(len(params))]))
            handle, _ = stmt.execute_query()
            reader = pa.RecordBatchReader._import_from_c(handle.address)
            try:
                first: pa.RecordBatch | None = reader.read_next_batch()
            except StopIteration:
                first = None
            _reply(out, {"ok": True, "stream": True})
            try:
                with pa.ipc.new_stream(out, reader.schema) as writer:
                    if first is not None:
                        writer.write_batch(first)
                    for batch in reader:
                        writer.write_batch(batch)
                out.flush()
            except BaseException as exc:
                sys.stderr.write(f"read failed while streaming: {exc}\n")
                sys.stderr.flush()
                raise SystemExit(1) from exc


def _reply(out: BinaryIO, head: dict[str, Any], payload: bytes | memoryview | None = None) -> None:
    out.write(json.dumps(head).encode() + b"\n")
    if payload is not None:
        out.write(payload)
    out.flush()


def serve(db: BulkDatabase, inp: BinaryIO, out: BinaryIO) -> None:
    while line := inp.readline():
        req = json.loads(line)
        payload = inp.read(req["nbytes"]) if req.get("nbytes") else b""
        try:
            if req["op"] == "insert":
                batch = pa.ipc.open_stream(payload).read_all()
                _reply(out, {"ok": True, "inserted": db.insert(batch)})
            elif req["op"] == "read":
                db.read(req["sql"], req.get("params") or [], out)
            else:
                _reply(out, {"ok": False, "error": f"unknown op {req['op']!r}"})
        except Exception as exc:  # reported to the parent, which decides whether to retry
            _reply(out, {"ok": False, "error": str(exc)})


def main() -> None:
    config = json.loads(sys.argv[1])
    db = BulkDatabase(config["db"], config["table"], config["pragmas"])
    serve(db, sys.stdin.buffer, sys.stdout.buffer)
    db.conn.close()
    db.db.close()


if __name__ == "__main__":
    main()

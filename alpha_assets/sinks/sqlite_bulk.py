"""Bulk SQLite I/O in a child process (`sqlite_bulk_child`, ADBC's SQLite driver fed Arrow IPC).

Why a child: the driver bundles its own SQLite library, and this process already talks to the same
file through Python's `sqlite3` (the sink's small writes, health probes, reports, tests). Two SQLite
libraries in one process do not see each other's POSIX locks; two processes do. So every ADBC
connection lives in a child process and the file is locked correctly against everyone.

A failure the child reports comes back as `sqlite3.OperationalError` with SQLite's message, so the
sink's retry policy treats a locked or full database the same on either path.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:  # pyarrow loads on the first bulk request, not when the code location loads
    import pyarrow as pa

CHILD = Path(__file__).with_name("sqlite_bulk_child.py")
READ_PRAGMAS = ("PRAGMA busy_timeout=30000",)


class BulkChildError(sqlite3.OperationalError):
    """The bulk process failed or died; the message is SQLite's (or says how the process ended)."""


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _arrow_for_sqlite(frame: pl.DataFrame) -> pa.Table:
    """Booleans as the 0/1 integers SQLite stores for them (Python's sqlite3 binds True as 1 too)."""
    frame = frame.with_columns(pl.col(pl.Boolean).cast(pl.Int64))
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())  # plain strings: what the driver binds


class BulkProcess:
    """One child process holding one ADBC connection; requests are serialised by a lock."""

    def __init__(self, db: Path, table: str, pragmas: tuple[str, ...]) -> None:
        config = json.dumps({"db": str(db), "table": table, "pragmas": list(pragmas)})
        # -P: the child's own folder is not put on sys.path (it imports no project module)
        self.proc = subprocess.Popen([sys.executable, "-P", str(CHILD), config], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, head: dict[str, Any], payload: pa.Buffer | None = None) -> tuple[dict[str, Any], bytes]:
        """Send a request, wait for its reply; a reply that announces a stream leaves it on stdout (read it
        before the next request)."""
        with self._lock:
            stdin, stdout = self._pipes()
            try:
                if payload is not None:
                    head = {**head, "nbytes": payload.size}
                stdin.write(json.dumps(head).encode() + b"\n")
                if payload is not None:
                    stdin.write(memoryview(payload))
                stdin.flush()
                line = stdout.readline()
            except BrokenPipeError:
                line = b""
            if not line:
                raise BulkChildError(f"sqlite bulk process ended (exit {self.proc.wait()}): {self._stderr()}")
            reply = json.loads(line)
            data = stdout.read(reply["nbytes"]) if reply.get("ok") and reply.get("nbytes") else b""
        if not reply.get("ok"):
            raise BulkChildError(str(reply.get("error")))
        return reply, data

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        return self.proc.stdin, self.proc.stdout

    def _stderr(self) -> str:
        err = self.proc.stderr.read() if self.proc.stderr is not None else b""
        return err.decode(errors="replace").strip()[-2000:]

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()  # end of requests: the child closes its connection and exits
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class BulkWriter:
    """INSERT OR IGNORE of whole frames through a child process started on first use (and again after
    it died: a failed request raises, the caller keeps its rows and may retry)."""

    def __init__(self, db: Path, table: str, pragmas: tuple[str, ...]) -> None:
        self.db, self.table, self.pragmas = db, table, pragmas
        self._proc: BulkProcess | None = None

    def start(self) -> None:
        """Start the process now (it takes a moment to import pyarrow), so the first insert need not wait."""
        if self._proc is None or not self._proc.alive():
            if self._proc is not None:
                self._proc.close()
            self._proc = BulkProcess(self.db, self.table, self.pragmas)

    def insert(self, frame: pl.DataFrame) -> int:
        """Rows of `frame` inserted (those whose key was new), in one transaction."""
        self.start()
        assert self._proc is not None
        reply, _ = self._proc.request({"op": "insert"}, _ipc_bytes(_arrow_for_sqlite(frame)))
        return int(reply["inserted"])

    def close(self) -> None:
        if self._proc is not None:
            self._proc.close()
            self._proc = None


def read_frame(db: Path, table: str, sql: str, params: list[Any]) -> pl.DataFrame:
    """The rows of a query, read by a child process on a read-only connection and turned into polars one
    fetched batch at a time (the Arrow copy of the whole result never exists)."""
    import pyarrow as pa

    proc = BulkProcess(Path(f"file:{db}?mode=ro"), table, READ_PRAGMAS)
    try:
        proc.request({"op": "read", "sql": sql, "params": params})
        _, stdout = proc._pipes()
        try:
            reader = pa.ipc.open_stream(stdout)
            parts = [pl.DataFrame(reader.schema.empty_table())]
            parts += [pl.DataFrame(batch) for batch in reader]
        except pa.ArrowException as exc:
            raise BulkChildError(f"sqlite bulk read cut short (exit {proc.proc.wait()}): {proc._stderr()}") from exc
    finally:
        proc.close()
    return pl.concat(parts, rechunk=False)

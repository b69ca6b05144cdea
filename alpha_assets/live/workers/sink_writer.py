"""The signal worker's sink writer: a thread that owns the sinks, so the worker's loop never waits
on them (a sink write goes through polars and SQLite; on a busy machine that takes milliseconds).

The worker hands over a ``Job`` when its batch policy says so (``sink_batch_n`` rows or the oldest
pending row ``sink_flush_ms`` old, or every batch with ``flush_ms=0``), one job at a time: rows
arriving while one is written wait for the next. The thread writes the rows to the sinks, flushes
them (SQLite commit, JSONL lines to the OS), publishes the JSONL minutes the event time has passed,
writes the checkpoint the job carries, and reports back (``Done``): which entries can be
acknowledged, which rows became durable and when.

A sink that cannot write (a locked database past its own retries, a full disk) does not kill the
worker: the thread counts the error (``sink_errors``, ``enospc_errors``; ``sink_failing`` is 1 while
it lasts, which turns the worker's health probe red) and writes the same job again after a short
back-off. The sinks skip the keys they already hold, so a retried job doubles nothing. Only an error
that is not an I/O or database error (a bug) stops the thread; the worker raises it.
"""

from __future__ import annotations

import errno
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from alpha_assets.live.workers.common import write_quick
from alpha_assets.sinks.base import SinkWriteError
from alpha_assets.sinks.schema import SIGNAL_SCHEMA
from alpha_assets.sinks.spool_files import SpoolError

RETRY_S = (0.05, 0.1, 0.2, 0.5)  # back-off between attempts of a failing job (the last one repeats)
_RETRIABLE = (OSError, sqlite3.Error, SinkWriteError, SpoolError)


def _is_enospc(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass
class Job:
    rows: list[dict[str, Any]] = field(default_factory=list)
    acks: dict[str, list[bytes]] = field(default_factory=dict)  # entries whose rows are all written by now
    seqs: dict[str, list[int]] = field(default_factory=dict)  # per symbol, the rows' keys (latency records)
    advance_to: int | None = None  # JSONL: publish the minutes before this event time
    checkpoint: bytes | None = None  # the state at the end of these entries, written once they are durable
    positions: dict[str, bytes | None] = field(default_factory=dict)
    close: bool = False


@dataclass
class Done:
    job: Job
    durable_ns: int


class SinkWriter:
    def __init__(self, sink: Any, ckpt_path: Path) -> None:
        self.sink, self.ckpt_path = sink, ckpt_path
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.busy = False  # a job handed over and not yet reported back
        self.counters: dict[str, Any] = {"jobs": 0, "rows": 0, "checkpoints": 0, "write_ms_last": 0.0,
                                         "sink_errors": 0, "enospc_errors": 0, "sink_failing": 0, "last_error": ""}
        self._thread = threading.Thread(target=self._run, name="sink-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._raise()
        self.busy = True
        self._jobs.put(job)

    def results(self, wait_s: float = 0.0) -> list[Done]:
        """What the thread finished since the last call (waiting up to ``wait_s`` for the first)."""
        out: list[Done] = []
        try:
            out.append(self._done.get(timeout=wait_s) if wait_s > 0 else self._done.get_nowait())
            while True:
                out.append(self._done.get_nowait())
        except queue.Empty:
            pass
        if out and self._jobs.empty():
            self.busy = False
        self._raise()
        return out

    def _raise(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"sink writer failed: {type(self.error).__name__}: {self.error}") from self.error

    def sink_counters(self) -> dict[str, Any]:
        """The sinks' counters now, read from the worker's thread while this one may be inside a write
        (a locked database's busy retries show while they happen); the last copy if the read races."""
        counters = getattr(self.sink, "counters", None)
        if counters is not None:
            try:
                self.counters["sink"] = counters()
            except RuntimeError:  # a dict resized under the read: keep the last copy
                pass
        return self.counters.get("sink", {})

    def _sink_counters(self) -> None:
        counters = getattr(self.sink, "counters", None)
        if counters is not None:
            self.counters["sink"] = counters()

    def _attempt(self, job: Job) -> int:
        if job.rows:
            self.sink.write(pl.DataFrame(job.rows, schema=SIGNAL_SCHEMA, orient="row"))
        self.sink.flush()
        if job.advance_to is not None:
            self.sink.advance_to(job.advance_to)
        ns = time.time_ns()
        if job.checkpoint is not None:
            write_quick(self.ckpt_path, job.checkpoint)
            self.counters["checkpoints"] += 1
        if job.close:
            self.sink.close()
        return ns

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            t0 = time.perf_counter()
            attempt = 0
            while True:
                try:
                    ns = self._attempt(job)
                    break
                except _RETRIABLE as exc:  # counted, then the same job again (keys make it idempotent)
                    self.counters["sink_errors"] += 1
                    self.counters["enospc_errors"] += int(_is_enospc(exc))
                    self.counters["sink_failing"] = 1
                    self.counters["last_error"] = f"{type(exc).__name__}: {exc}"[:300]
                    self._sink_counters()
                    time.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                    attempt += 1
                except BaseException as exc:  # a bug: reported to the worker's loop, which raises it
                    self.error = exc
                    return
            self.counters["sink_failing"] = 0
            self.counters["jobs"] += 1
            self.counters["rows"] += len(job.rows)
            self.counters["write_ms_last"] = round((time.perf_counter() - t0) * 1000, 3)
            self._sink_counters()
            self._done.put(Done(job, ns))
            if job.close:
                return

    def close(self, timeout_s: float = 60.0) -> list[Done]:
        """Write what is queued, close the sinks, stop the thread; returns the last results."""
        if self._thread.is_alive():
            self._jobs.put(Job(close=True))
            self._thread.join(timeout_s)
        out = self.results()
        self.busy = False
        return out

"""Both sinks at once (v13 `--sink dual`), and `make_sink` for any configured kind."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from alpha_assets.sinks.base import SignalSink
from alpha_assets.sinks.config import SinkConfig
from alpha_assets.sinks.jsonl import JsonlSignalSink
from alpha_assets.sinks.sqlite import SqliteSignalSink

PARALLEL_ROWS = 20_000  # from this size a write runs both sinks at once


class DualSignalSink:
    """Writes every frame to the JSONL and the SQLite sink; the same rows go to both, always."""

    kind = "dual"

    def __init__(self, jsonl: JsonlSignalSink, sqlite: SqliteSignalSink) -> None:
        self.jsonl = jsonl
        self.sqlite = sqlite

    def write(self, df: pl.DataFrame) -> None:
        if df.height < PARALLEL_ROWS:
            self.jsonl.write(df)
            self.sqlite.write(df)  # a SinkWriteError here leaves the rows pending in SQLite's buffer
            return
        # A big write: SQLite in a second thread while polars encodes the JSONL (both release the GIL
        # for most of their work), so on two cores dual costs little more than the slower sink.
        failure: list[BaseException] = []

        def to_sqlite() -> None:
            try:
                self.sqlite.write(df)
            except BaseException as exc:  # re-raised in the caller's thread below
                failure.append(exc)

        worker = threading.Thread(target=to_sqlite, name="sqlite-sink-write")
        worker.start()
        try:
            self.jsonl.write(df)
        finally:
            worker.join()
        if failure:
            raise failure[0]

    def advance_to(self, event_time_ms: int) -> None:
        """Event-time heartbeat: publish idle JSONL minutes, flush SQLite rows that are due."""
        self.jsonl.advance_to(event_time_ms)
        self.sqlite.advance_to(event_time_ms)

    def flush(self) -> None:
        self.jsonl.flush()
        self.sqlite.flush()

    def close(self) -> None:
        try:
            self.sqlite.close()
        finally:
            self.jsonl.close()

    def counters(self) -> dict[str, Any]:
        return {"jsonl": self.jsonl.counters(), "sqlite": self.sqlite.counters()}


def make_sink(cfg: SinkConfig, runtime_dir: Path, *, clock: Callable[[], float] | None = None) -> SignalSink:
    """The sink `cfg.kind` under `cfg.output_dir` (or `runtime_dir`): jsonl | sqlite | dual."""
    root = cfg.runtime_dir(Path(runtime_dir))
    if cfg.kind == "jsonl":
        return JsonlSignalSink(root, cfg, clock=clock)
    if cfg.kind == "sqlite":
        return SqliteSignalSink(root / cfg.sqlite_file, cfg, clock=clock)
    return DualSignalSink(JsonlSignalSink(root, cfg, clock=clock),
                          SqliteSignalSink(root / cfg.sqlite_file, cfg, clock=clock))

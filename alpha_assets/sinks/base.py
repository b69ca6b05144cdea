"""The sink protocol and the dead-letter file shared by the signal sinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson
import polars as pl

from alpha_assets.layout import RuntimeLayout


@runtime_checkable
class SignalSink(Protocol):
    kind: str

    def write(self, df: pl.DataFrame) -> None: ...

    def flush(self) -> None: ...

    def advance_to(self, event_time_ms: int) -> None: ...

    def close(self) -> None: ...

    def counters(self) -> dict[str, Any]: ...


class SinkWriteError(RuntimeError):
    """A write could not be completed within the retry budget; the rows are still pending in memory."""


def dead_letter(runtime_dir: Path, sink: str, reason: str, rows: pl.DataFrame) -> int:
    """Append rows a sink cannot store to `<runtime>/deadletter/signals_<sink>.jsonl` with a reason."""
    if rows.height == 0:
        return 0
    path = RuntimeLayout(Path(runtime_dir)).deadletter_file(sink)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        for row in rows.to_dicts():
            fh.write(orjson.dumps({"reason": reason, "row": row}, default=str) + b"\n")
    return rows.height


class FlushPolicy:
    """When pending rows must be written: `batch_n` rows, or the oldest pending row is `flush_ms` old.

    Age is measured on event time (the newest `ts_ms` seen) unless a clock (ms) is injected, as a
    live supervisor does; no wall clock is read here. `flush_ms == 0` flushes on every write.
    """

    def __init__(self, batch_n: int, flush_ms: int, clock: Any = None) -> None:
        self.batch_n = batch_n
        self.flush_ms = flush_ms
        self.clock = clock
        self.pending = 0
        self._since: int | None = None
        self._event_now: int | None = None

    def add(self, n: int, min_ts: int | None, max_ts: int | None) -> bool:
        """Record `n` new pending rows; True if a flush is due."""
        if max_ts is not None and (self._event_now is None or max_ts > self._event_now):
            self._event_now = max_ts
        now = self.now()
        if self.pending == 0 and n > 0:
            self._since = now if self.clock is not None else (min_ts if min_ts is not None else now)
        self.pending += n
        return self.due()

    def now(self) -> int | None:
        return int(self.clock()) if self.clock is not None else self._event_now

    def due(self) -> bool:
        if self.pending == 0:
            return False
        if self.flush_ms == 0 or self.pending >= self.batch_n:
            return True
        now, since = self.now(), self._since
        return now is not None and since is not None and now - since >= self.flush_ms

    def reset(self) -> None:
        self.pending = 0
        self._since = None

"""Signal worker: tails the landing zone minute by minute, runs the engine step, writes the sink.

Per symbol it consumes the minutes the harvester has handed over (``watermark_<SYM>.json``), in
order, starting at the run's first minute. After each minute the sink is flushed and then the
checkpoint (engine state + next minute) is replaced atomically. A restart resumes from the
checkpoint: minutes after it are replayed, and because the sinks are idempotent on
(run_id, symbol, seq) a minute written just before a crash is not doubled.
``input_mode=preview`` replays whatever is already landed without waiting for the watermark.

``--drain`` is the end of a soak, run once after the harvester has stopped: it consumes every
landed minute (closed or not), then flushes the trades the engine still holds back, so the live
sinks end with exactly the rows a batch run over the landed partition computes.

    python -m alpha_assets.live.workers.signal [--drain]
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

from alpha_assets.engine import flush as flush_engine
from alpha_assets.engine import initial_state, step
from alpha_assets.engine.step import EngineState
from alpha_assets.live.workers.common import (
    MINUTE_MS,
    Heartbeat,
    StopFlag,
    WorkerConfig,
    load_config,
    minute_parts,
    read_json,
    ready,
)
from alpha_assets.market.landing import last_landed_minute, partition_dir
from alpha_assets.reports.atomic import write_bytes_atomic
from alpha_assets.sinks import SinkConfig, make_sink

NAME = "signal"
CKPT_VERSION = 1


class SymbolTail:
    def __init__(self, cfg: WorkerConfig, symbol: str, ckpt_dir: Path, drain: bool = False) -> None:
        self.cfg, self.symbol, self.drain = cfg, symbol, drain
        self.path = ckpt_dir / f"signal_{symbol}.ckpt"
        self.resumed = False
        self._replay_through: int | None = None
        if self.path.exists():
            blob = pickle.loads(self.path.read_bytes())
            if blob.get("version") != CKPT_VERSION or blob.get("run_id") != cfg.run_id:
                raise RuntimeError(f"checkpoint {self.path} belongs to another run/version; remove it to start over")
            self.state = EngineState.from_bytes(blob["state"])
            self.next_minute = int(blob["next_minute_ms"])
            self.rows_out = int(blob["rows_out"])
            self.resumed = True
        else:
            self.state = initial_state(symbol, cfg.engine or None, run_id=cfg.run_id)
            self.next_minute = (cfg.start_ms // MINUTE_MS) * MINUTE_MS
            self.rows_out = 0

    @property
    def replaying(self) -> bool:
        """Consume whatever is landed, without waiting for the harvester's watermark."""
        return self.drain or self.cfg.input_mode == "preview"

    def last_landed_minute(self) -> int | None:
        # older days cannot hold what is still to come
        return last_landed_minute(self.cfg.data_root, self.symbol, minute_parts(self.next_minute)[0])

    def available_through(self) -> int:
        if self.replaying:
            # replay: through the latest landed minute; minutes without files before it (a soak that
            # began in an empty minute, a quiet minute) are consumed as empty, as the watermark would.
            # A drain runs after the harvester stopped, so its landed set is read once.
            if self._replay_through is None or not self.drain:
                last = self.last_landed_minute()
                self._replay_through = 0 if last is None else last + MINUTE_MS
            return self._replay_through
        wm = read_json(self.cfg.watermark(self.symbol)).get("closed_through_ms")
        return int(wm) if wm else 0

    def _read(self, kind: str, minute: int) -> pl.DataFrame | None:
        date, hhmm = minute_parts(minute)
        p = partition_dir(self.cfg.data_root, "raw", date, self.symbol) / f"{kind}_{hhmm}.parquet"
        return pl.read_parquet(p) if p.exists() else None

    def next_chunk(self) -> tuple[int, pl.DataFrame | None, pl.DataFrame | None] | None:
        if self.next_minute + MINUTE_MS > self.available_through():
            return None
        trades, book = self._read("trades", self.next_minute), self._read("book", self.next_minute)
        return self.next_minute, trades, book

    def checkpoint(self) -> None:
        blob = {"version": CKPT_VERSION, "run_id": self.cfg.run_id, "symbol": self.symbol,
                "next_minute_ms": self.next_minute, "rows_out": self.rows_out, "state": self.state.to_bytes(),
                "written_at": time.time()}
        write_bytes_atomic(self.path, pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL))


def publish_before(sink: Any, event_time_ms: int) -> None:
    for target in (sink, getattr(sink, "jsonl", None)):
        advance = getattr(target, "advance_to", None)
        if advance is not None:
            advance(event_time_ms)
            return


def run(cfg: WorkerConfig, stop: StopFlag, drain: bool = False) -> None:
    runtime = cfg.runtime_dir
    sink = make_sink(SinkConfig.from_env(kind=cfg.sink, output_dir=runtime), runtime)
    tails = {s: SymbolTail(cfg, s, cfg.checkpoint_dir(), drain) for s in cfg.symbols}
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    c: dict[str, Any] = {"minutes_done": 0, "rows_written": 0, "trades_in": 0, "book_in": 0, "queue_dropped": 0,
                         "resumed": sorted(s for s, t in tails.items() if t.resumed), "last_latency_ms": None,
                         "step_ms_last": 0.0, "errors": 0}

    def counters() -> dict[str, Any]:
        return {**c, "signals_total": sum(t.rows_out for t in tails.values()),
                "next_minute_ms": {s: t.next_minute for s, t in tails.items()},
                "pending_trades": {s: t.state.pending_trades for s, t in tails.items()},
                "sink": sink.counters()}

    beat.beat(counters(), force=True)
    ready(NAME, f"sink={cfg.sink} resumed={c['resumed']}")
    while not stop.is_set():
        progressed = False
        for tail in tails.values():
            if stop.is_set():
                break
            chunk = tail.next_chunk()
            if chunk is None:
                continue
            minute, trades, book = chunk
            t0 = time.perf_counter()
            tail.state, rows = step(tail.state, trades, book)
            if rows.height:
                sink.write(rows)
            sink.flush()  # durable before the checkpoint says the minute is done
            tail.rows_out += rows.height
            tail.next_minute = minute + MINUTE_MS
            # Publish the JSONL minutes before this one: trades held back at the end of the previous
            # minute were released by this minute's book, so that minute is final now.
            publish_before(sink, minute)
            tail.checkpoint()
            c["step_ms_last"] = round((time.perf_counter() - t0) * 1000, 3)
            c["minutes_done"] += 1
            c["rows_written"] += rows.height
            c["trades_in"] += 0 if trades is None else trades.height
            c["book_in"] += 0 if book is None else book.height
            if rows.height and "created_at" in rows.columns:
                # event → sink: the trade's receive time to now (wall clock, an observation only)
                c["last_latency_ms"] = int(time.time() * 1000) - int(rows["created_at"].max())
            progressed = True
            beat.beat(counters())
        if not progressed:
            if drain:
                break  # every landed minute is consumed
            stop.event.wait(cfg.poll_s)
        beat.beat(counters())
    if drain:
        for tail in tails.values():
            tail.state, rows = flush_engine(tail.state)
            if rows.height:
                sink.write(rows)
            sink.flush()
            tail.rows_out += rows.height
            c["rows_written"] += rows.height
            tail.checkpoint()
    sink.flush()
    sink.close()
    beat.beat(counters(), force=True)


def main() -> None:
    stop = StopFlag()
    run(load_config(), stop, drain="--drain" in sys.argv[1:])


if __name__ == "__main__":
    main()

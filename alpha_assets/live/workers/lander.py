"""Lander worker: the market and dead-letter streams → the landing zone's minute files (group ``lander``).

Same layout and semantics as the landing zone always had (``alpha_assets.market.landing``), so a
soak's data is an ordinary partition for the batch graph (``market_source=landing``), now with each
row's ``ingest_seq``. A minute (of event time) is landed once the symbol's event-time watermark has
passed its end by ``lateness_ms`` and the harvester is backfilling no trade of the symbol (the
entries' ``g``); then ``watermark_<SYM>.json`` advances (``closed_through_ms``). A row for a minute
already landed is merged into its file (``late_rows``). Entries are acknowledged once the file that
holds them is durable, so a restarted lander finds exactly the open minutes in its pending list.
The lander also trims the run's streams below what every group acknowledged.

At the end of a run the soak marks where each stream ends (``bus_admin.mark_end``): the lander
consumes up to there, lands everything it holds, closes the watermark over it and exits.

    python -m alpha_assets.live.workers.lander
"""

from __future__ import annotations

import errno
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl
import redis

from alpha_assets.live import bus, bus_admin
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
from alpha_assets.market.landing import LandingWriter, record_live_run
from alpha_assets.market.schema import BOOK_SCHEMA, DEADLETTER_SCHEMA, TRADE_SCHEMA
from alpha_assets.reports.atomic import write_text_atomic

NAME = "lander"
SCHEMAS = {"trades": TRADE_SCHEMA, "book": BOOK_SCHEMA, "deadletter": DEADLETTER_SCHEMA}
_KINDS = {bus.KIND_TRADE: "trades", bus.KIND_BOOK: "book", bus.KIND_DEAD: "deadletter"}
TRIM_EVERY_S = 5.0


def preview_frame(trades: pl.DataFrame, book: pl.DataFrame) -> pl.DataFrame | None:
    from alpha_assets.market.preview import preview_bars

    return preview_bars(trades, book)


def frame(kind: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The canonical frame of a kind from entry bodies (extra fields such as `rn` are left out)."""
    schema = SCHEMAS[kind]
    return pl.DataFrame({c: [r.get(c) for r in rows] for c in schema}, schema=schema)


@dataclass
class Minute:
    rows: dict[str, list[bytes]] = field(default_factory=lambda: {k: [] for k in SCHEMAS})
    ids: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))


class Lander:
    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.keys = bus.Keys(cfg.run_id)
        self.streams = [self.keys.md(s) for s in cfg.symbols] + [self.keys.dlq(s) for s in cfg.symbols]
        self.symbol_of = {self.keys.md(s): s for s in cfg.symbols} | {self.keys.dlq(s): s for s in cfg.symbols}
        self.reader = bus.GroupReader(bus.GROUP_LANDER, NAME, self.streams)
        self.writers = {s: LandingWriter(cfg.data_root, s) for s in cfg.symbols}
        self.recorded: set[tuple[str, str]] = set()  # partitions this run's mode is noted in
        self.buffers: dict[tuple[str, int], Minute] = {}
        self.inflight: dict[str, set[bytes]] = {s: set() for s in self.streams}  # buffered, not yet acked
        self.event_wm: dict[str, int] = {}
        self.gaps: dict[str, int] = dict.fromkeys(cfg.symbols, 0)
        self.closed_through: dict[str, int] = {}
        for sym in cfg.symbols:
            wm = read_json(cfg.watermark(sym)).get("closed_through_ms")
            self.closed_through[sym] = int(wm) if wm else (cfg.start_ms // MINUTE_MS) * MINUTE_MS
        self.c: dict[str, int] = dict.fromkeys(
            ("minutes_landed", "files_written", "raw_files", "preview_files", "deadletter_files", "trades_landed",
             "book_landed", "deadletter_landed", "late_rows", "preview_errors", "entries", "trimmed",
             "trim_errors", "bus_errors", "write_errors", "enospc_errors", "landing_failing"), 0)
        self.next_trim = 0.0
        self.retry_at = 0.0  # after a failed write (disk full): the minutes wait until then

    # ------------------------------------------------------------------ consuming
    def take(self, batches: list[tuple[str, list[bus.Entry]]]) -> None:
        for stream, entries in batches:
            sym = self.symbol_of[stream]
            for entry_id, fields in entries:
                kind_b, body = bus.decode(fields)
                kind = _KINDS.get(kind_b)
                if kind is None:
                    continue
                t = body.get("event_time_ms")
                if t is None:  # a dead letter without event time is dated by its arrival
                    t = bus.id_ms(entry_id)
                minute = (int(t) // MINUTE_MS) * MINUTE_MS
                if kind != "deadletter":
                    self.event_wm[sym] = max(self.event_wm.get(sym, 0), int(t))
                    self.gaps[sym] = int(body.get("g") or 0)
                if minute + MINUTE_MS <= self.closed_through[sym]:
                    self.c["late_rows"] += 1  # merged into its landed minute below
                buf = self.buffers.get((sym, minute))
                if buf is None:
                    buf = self.buffers[(sym, minute)] = Minute()
                buf.rows[kind].append(fields[kind_b])  # the encoded body: a third of the dict's memory
                buf.ids[stream].append(entry_id)
                self.inflight[stream].add(entry_id)
                self.c["entries"] += 1

    def land(self, r: redis.Redis, final: bool = False) -> None:
        if time.monotonic() < self.retry_at:
            return
        for sym, minute in sorted(self.buffers):
            limit = self.event_wm.get(sym, 0) - self.cfg.lateness_ms
            complete = minute + MINUTE_MS <= limit and self.gaps[sym] == 0
            late = minute + MINUTE_MS <= self.closed_through[sym]
            if not (complete or late or final):
                continue
            buf = self.buffers[(sym, minute)]
            try:
                self._write(sym, minute, buf)
            except OSError as exc:  # disk full, I/O error: counted; the minute stays buffered (unacked)
                self.c["write_errors"] += 1
                self.c["enospc_errors"] += int(exc.errno == errno.ENOSPC)
                self.c["landing_failing"] = 1
                self.retry_at = time.monotonic() + 0.2
                if final:
                    raise
                return
            self.c["landing_failing"] = 0
            del self.buffers[(sym, minute)]
            for stream, ids in buf.ids.items():  # durable now: the entries are done
                bus.ack(r, stream, bus.GROUP_LANDER, ids)
                self.inflight[stream].difference_update(ids)
            if complete and not late:
                self.c["minutes_landed"] += 1
        for sym in self.cfg.symbols:
            if self.gaps[sym] or sym not in self.event_wm:
                continue
            closed = (self.event_wm[sym] - self.cfg.lateness_ms) // MINUTE_MS * MINUTE_MS
            open_minutes = [m for s, m in self.buffers if s == sym]
            if open_minutes:
                closed = min(closed, min(open_minutes))
            self._advance(sym, closed)

    def close_all(self) -> None:
        """End of run: the feed has stopped and everything is landed, so every minute is final."""
        for sym in self.cfg.symbols:
            if sym in self.event_wm:
                self._advance(sym, (self.event_wm[sym] // MINUTE_MS + 1) * MINUTE_MS)

    def _advance(self, sym: str, closed: int) -> None:
        if closed > self.closed_through[sym]:
            self.closed_through[sym] = closed
            write_text_atomic(self.cfg.watermark(sym), json.dumps(
                {"symbol": sym, "closed_through_ms": closed, "ts": time.time()}))

    def _write(self, sym: str, minute: int, buf: Minute) -> None:
        date, hhmm = minute_parts(minute)
        w = self.writers[sym]
        if (date, sym) not in self.recorded:  # before the first file: a batch run must know the mode
            record_live_run(self.cfg.data_root, date, sym, self.cfg.run_id, self.cfg.book_join)
            self.recorded.add((date, sym))
        frames = {k: frame(k, [orjson.loads(b) for b in rows]) for k, rows in buf.rows.items()}
        for kind, f in frames.items():
            if f.height and w.write_minute(kind, date, hhmm, f) is not None:
                self.c["files_written"] += 1
                self.c["raw_files" if kind != "deadletter" else "deadletter_files"] += 1
                self.c[{"trades": "trades_landed", "book": "book_landed", "deadletter": "deadletter_landed"}[kind]] \
                    += f.height
        if not (frames["trades"].height or frames["book"].height):
            return
        try:
            pv = preview_frame(frames["trades"], frames["book"])
        except Exception:  # preview is derived data; a failure is counted, raw is already safe
            self.c["preview_errors"] += 1
            pv = None
        if pv is not None and pv.height and w.write_minute("preview", date, hhmm, pv) is not None:
            self.c["preview_files"] += 1
            self.c["files_written"] += 1

    def settle(self, r: redis.Redis, skipped: list[tuple[str, bytes]]) -> None:
        """Entries given again that are not buffered were landed before (their ack was lost with a
        restarted Redis, or the harvester re-added them): acknowledge them now."""
        done: dict[str, list[bytes]] = defaultdict(list)
        for stream, entry_id in skipped:
            if entry_id not in self.inflight[stream]:
                done[stream].append(entry_id)
        for stream, ids in done.items():
            bus.ack(r, stream, bus.GROUP_LANDER, ids)

    def trim(self, r: redis.Redis) -> None:
        if time.monotonic() < self.next_trim:
            return
        self.next_trim = time.monotonic() + TRIM_EVERY_S
        for stream in self.keys.streams(self.cfg.symbols):
            try:
                self.c["trimmed"] += bus_admin.trim_acknowledged(r, self.keys, stream)
            except redis.ResponseError:  # trimming is housekeeping: try again next time
                self.c["trim_errors"] += 1

    def drained(self, r: redis.Redis, ends: dict[str, str]) -> bool:
        return all(bus_admin.covered(self.reader.taken_through(r, s), ends.get(self.keys.short(s)))
                   for s in self.streams)

    def counters(self) -> dict[str, Any]:
        return {**self.c, "open_minutes": len(self.buffers), "closed_through_ms": dict(self.closed_through),
                "open_gap_trades": dict(self.gaps)}


def run(cfg: WorkerConfig, stop: StopFlag) -> None:
    lander = Lander(cfg)
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    r = bus.wait_ready(cfg.bus_url, timeout_s=3600)
    bus.ensure_groups(r, lander.streams, bus.GROUP_LANDER)
    beat.beat(lander.counters(), force=True)
    ready(NAME, f"streams={len(lander.streams)}")
    ends: dict[str, str] = {}
    next_end_check = 0.0
    while not stop.is_set():
        try:
            if not ends and time.monotonic() >= next_end_check:
                next_end_check = time.monotonic() + 0.5
                ends = bus_admin.read_end(r, lander.keys)
            fresh, skipped = lander.reader.read(r, count=20_000, block_ms=200)
            lander.take(fresh)
            lander.settle(r, skipped)
            if ends and not fresh and lander.drained(r, ends):
                lander.land(r, final=True)
                lander.close_all()
                beat.beat(lander.counters(), force=True)
                return
            lander.land(r)
            lander.trim(r)
        except bus.BUS_ERRORS:
            lander.c["bus_errors"] += 1
            lander.reader.reset()  # Redis may have restarted: take the pending list again
            time.sleep(0.1)
            try:
                r = bus.wait_ready(cfg.bus_url, timeout_s=5)
                bus.ensure_groups(r, lander.streams, bus.GROUP_LANDER)
            except TimeoutError:
                pass
        beat.beat(lander.counters())
    beat.beat(lander.counters(), force=True)


def main() -> None:
    stop = StopFlag()
    run(load_config(), stop)


if __name__ == "__main__":
    main()

"""Lander worker: the market and dead-letter streams → the landing zone's minute files (group ``lander``).

Same layout and semantics as the landing zone always had (``alpha_assets.market.landing``), so a
soak's data is an ordinary partition for the batch graph (``market_source=landing``), now with each
row's ``ingest_seq``. A minute (of event time) is landed once the symbol's watermark has passed its
end by ``lateness_ms`` and the harvester is backfilling no trade of the symbol (the entries' ``g``);
then ``watermark_<SYM>.json`` advances (``closed_through_ms``). The watermark moves with min(event
time, receive time) of each row, so no message dated in the future can close a minute early. A row
for a minute already landed is merged into its file (``late_rows``).

Hostile input: minutes are landed through ``LandingWriter.land_rows``, so a row that cannot be
written becomes an ``unlandable:<why>`` dead letter and the rest of its minute lands. A minute
whose write fails stays buffered and unacknowledged and is retried (``land_failures``): entries
are acknowledged only once the files that hold them are durable, so a lander that dies between
two writes finds the minute in its pending list and writes it again (merge-on-write: neither
lost nor doubled). Dead letters are filed by ``deadletter_bucket`` (their stream ``dlq:<SYM>``,
or ``dlq:_UNROUTED``) in the minute of their receive time, landed once the receive clock (the
entries' ids) has passed it by ``lateness_ms``. The buffer is bounded (``lander_buffer_max``
entries): beyond, the oldest minutes land early (``forced_minutes``; the watermark still waits
for them) and, while writes fail, reading pauses (``read_paused``): Redis holds the rest.

At the end of a run the soak marks where each stream ends (``bus_admin.mark_end``): the lander
consumes up to there, lands everything it holds, closes the watermark over it and exits. Rows the
landing zone still refuses then are spilled to ``unlanded.jsonl`` beside the watermarks
(``spilled_rows``), never dropped.

    python -m alpha_assets.live.workers.lander
"""

from __future__ import annotations

import errno
import json
import os
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
from alpha_assets.market.landing_rows import LandResult, deadletter_time, time_ok
from alpha_assets.market.preview import preview_bars
from alpha_assets.market.schema import UNROUTED
from alpha_assets.reports.atomic import write_text_atomic

NAME = "lander"
_KINDS = {bus.KIND_TRADE: "trades", bus.KIND_BOOK: "book", bus.KIND_DEAD: "deadletter"}
_LANDED = {"trades": "trades_landed", "book": "book_landed", "deadletter": "deadletter_landed"}
TRIM_EVERY_S = 5.0
RETRY_S = 1.0  # a minute whose write failed is tried again after this
FINAL_ATTEMPTS = 5


def _int(v: Any, default: int = 0) -> int:
    return v if type(v) is int else default


def _row(raw: bytes) -> Any:
    """An entry's body; one that is not JSON is handed on as text (land_rows refuses it as no row)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


@dataclass
class Minute:
    rows: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))  # kind → encoded bodies
    ids: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))  # stream → entry ids
    n: int = 0
    retry_at: float = 0.0


class Lander:
    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.keys = bus.Keys(cfg.run_id)
        self.streams = self.keys.harvested(cfg.symbols)
        self.bucket_of = {self.keys.md(s): s for s in cfg.symbols} | {self.keys.dlq(s): s for s in cfg.symbols} \
            | {self.keys.dlq(UNROUTED): UNROUTED}
        self.reader = bus.GroupReader(bus.GROUP_LANDER, NAME, self.streams)
        self.writers = {s: LandingWriter(cfg.data_root, s) for s in [*cfg.symbols, UNROUTED]}
        self.recorded: set[tuple[str, str]] = set()  # partitions this run's mode is noted in
        self.market: dict[tuple[str, int], Minute] = {}  # (symbol, minute of event time)
        self.dead: dict[tuple[str, int], Minute] = {}  # (bucket, minute of receive time)
        self.held = 0  # entries buffered in both
        self.inflight: dict[str, set[bytes]] = {s: set() for s in self.streams}  # buffered, not yet acked
        self.foreign: dict[str, list[bytes]] = defaultdict(list)  # entries of a kind the lander does not land
        self.event_wm: dict[str, int] = {}
        self.recv_clock = 0  # newest entry id (ms): the harvester's receive clock
        self.gaps: dict[str, int] = dict.fromkeys(cfg.symbols, 0)
        self.closed_through: dict[str, int] = {}
        for sym in cfg.symbols:
            wm = read_json(cfg.watermark(sym)).get("closed_through_ms")
            self.closed_through[sym] = int(wm) if wm else (cfg.start_ms // MINUTE_MS) * MINUTE_MS
        self.c: dict[str, int] = dict.fromkeys(
            ("minutes_landed", "files_written", "raw_files", "preview_files", "deadletter_files", "trades_landed",
             "book_landed", "deadletter_landed", "late_rows", "preview_errors", "entries", "trimmed",
             "trim_errors", "bus_errors", "unlandable_rows", "land_failures", "forced_minutes", "read_paused",
             "spilled_rows", "unrouted_landed", "foreign_entries", "write_errors", "enospc_errors",
             "landing_failing"), 0)
        self.next_trim = 0.0

    # ------------------------------------------------------------------ consuming
    def take(self, batches: list[tuple[str, list[bus.Entry]]]) -> None:
        for stream, entries in batches:
            bucket = self.bucket_of[stream]
            for entry_id, fields in entries:
                (kind_b, raw), = fields.items()
                kind = _KINDS.get(kind_b)
                if kind is None:  # nothing of the landing zone's: done with at once
                    self.foreign[stream].append(entry_id)
                    self.c["foreign_entries"] += 1
                    continue
                body = _row(raw)
                body = body if isinstance(body, dict) else {}  # land_rows refuses what is no row
                arrival = bus.id_ms(entry_id)
                self.recv_clock = max(self.recv_clock, arrival)
                if kind == "deadletter":
                    key = (bucket, deadletter_time(body, arrival) // MINUTE_MS * MINUTE_MS)
                    buffers = self.dead
                else:
                    event_t = body.get("event_time_ms")
                    t = arrival  # not a landable time: land_rows turns the row into a dead letter
                    if time_ok(event_t):
                        t = event_t
                        # a row dated ahead of its own receipt cannot move the watermark past now
                        recv = body.get("recv_time_ms")
                        seen = min(t, recv if time_ok(recv) else arrival)
                        self.event_wm[bucket] = max(self.event_wm.get(bucket, 0), seen)
                    self.gaps[bucket] = _int(body.get("g"))
                    key, buffers = (bucket, t // MINUTE_MS * MINUTE_MS), self.market
                    if key[1] + MINUTE_MS <= self.closed_through[bucket]:
                        self.c["late_rows"] += 1  # merged into its landed minute below
                buf = buffers.get(key)
                if buf is None:
                    buf = buffers[key] = Minute()
                buf.rows[kind].append(raw)  # the encoded body: a third of the dict's memory
                buf.ids[stream].append(entry_id)
                buf.n += 1
                self.held += 1
                self.inflight[stream].add(entry_id)
                self.c["entries"] += 1

    def land(self, r: redis.Redis, final: bool = False) -> None:
        now = time.monotonic()
        forced = self._over_bound()
        for key in sorted(self.market):
            sym, minute = key
            limit = self.event_wm.get(sym, 0) - self.cfg.lateness_ms
            complete = minute + MINUTE_MS <= limit and self.gaps[sym] == 0
            late = minute + MINUTE_MS <= self.closed_through[sym]
            if (complete or late or final or key in forced) and self._land(r, self.market, key, final, now):
                self.c["minutes_landed"] += complete and not late
                self.c["forced_minutes"] += key in forced and not (complete or late or final)
        for key in sorted(self.dead):
            complete = key[1] + MINUTE_MS <= self.recv_clock - self.cfg.lateness_ms
            if complete or final or key in forced:
                self._land(r, self.dead, key, final, now)
        for sym in self.cfg.symbols:
            if self.gaps[sym] or sym not in self.event_wm:
                continue
            closed = (self.event_wm[sym] - self.cfg.lateness_ms) // MINUTE_MS * MINUTE_MS
            open_minutes = [m for s, m in self.market if s == sym] + [m for s, m in self.dead if s == sym]
            if open_minutes:
                closed = min(closed, min(open_minutes))
            self._advance(sym, closed)

    def _over_bound(self) -> set[tuple[str, int]]:
        """The oldest minutes to land early so the buffer gets back under its bound."""
        excess = self.held - self.cfg.lander_buffer_max
        out: set[tuple[str, int]] = set()
        if excess <= 0:
            return out
        for key, buf in sorted([*self.market.items(), *self.dead.items()], key=lambda kv: kv[0][1]):
            out.add(key)
            excess -= buf.n
            if excess <= 0:
                break
        return out

    def _land(self, r: redis.Redis, buffers: dict[tuple[str, int], Minute], key: tuple[str, int], final: bool,
              now: float) -> bool:
        """Write one buffered minute and acknowledge its entries; False (kept, unacked) when a write failed."""
        buf = buffers[key]
        if buf.retry_at > now and not final:
            return False
        if not self._write(key[0], key[1], buf):
            self.c["land_failures"] += 1
            self.c["landing_failing"] = 1  # the health probe turns red while minutes cannot be written
            buf.retry_at = now + RETRY_S
            return False
        self.c["landing_failing"] = 0
        del buffers[key]
        self._ack(r, buf)
        return True

    def _ack(self, r: redis.Redis, buf: Minute) -> None:
        for stream, ids in buf.ids.items():  # durable now (or spilled): the entries are done
            bus.ack(r, stream, bus.GROUP_LANDER, ids)
            self.inflight[stream].difference_update(ids)
        self.held -= buf.n

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

    def _count_write_error(self, why: str) -> None:
        self.c["write_errors"] += 1
        self.c["enospc_errors"] += f"[Errno {errno.ENOSPC}]" in why  # disk full: the fault job looks for it

    def _write(self, bucket: str, minute: int, buf: Minute) -> bool:
        """Land every kind of one buffered minute, row by row isolated; counted only once all is durable
        (a retry rewrites what landed before: merge-on-write makes that a no-op)."""
        date, _ = minute_parts(minute)
        w = self.writers[bucket]
        results: list[tuple[str, LandResult]] = []
        try:
            if bucket != UNROUTED and buf.rows.get("trades", buf.rows.get("book")) and (date, bucket) not in self.recorded:
                # before the first file: a batch run must know the mode
                record_live_run(self.cfg.data_root, date, bucket, self.cfg.run_id, self.cfg.book_join)
                self.recorded.add((date, bucket))
            for kind, raw in buf.rows.items():
                results.append((kind, w.land_rows(kind, [_row(b) for b in raw], fallback_ms=minute)))
        except (OSError, ValueError) as exc:  # the partition's run record could not be written: like a failed file
            self._count_write_error(str(exc) if not isinstance(exc, OSError) else f"[Errno {exc.errno}]")
            return False
        failures = [why for _, res in results for *_, why in res.failed]
        if failures:
            for why in failures:
                self._count_write_error(why)
            return False
        for kind, res in results:
            self.c["files_written"] += len(res.files)
            self.c["raw_files" if kind != "deadletter" else "deadletter_files"] += len(res.files)
            self.c[_LANDED[kind]] += res.landed
            self.c["deadletter_landed"] += res.deadletters_landed
            self.c["unlandable_rows"] += len(res.deadletters)
            if bucket == UNROUTED:
                self.c["unrouted_landed"] += res.landed
        if bucket != UNROUTED and any(kind != "deadletter" and res.landed for kind, res in results):
            self._preview(bucket, minute)
        return True

    def _preview(self, sym: str, minute: int) -> None:
        """Preview bars of the whole landed minute (read back: late rows and earlier ones together)."""
        date, hhmm = minute_parts(minute)
        w = self.writers[sym]
        try:
            paths = [w.path(k, date, hhmm) for k in ("trades", "book")]
            if not all(p.exists() for p in paths):
                return
            pv = preview_bars(pl.read_parquet(paths[0]), pl.read_parquet(paths[1]))
            if pv.height and w.write_minute("preview", date, hhmm, pv) is not None:
                self.c["preview_files"] += 1
                self.c["files_written"] += 1
        except Exception:  # preview is derived data; a failure is counted, raw is already safe
            self.c["preview_errors"] += 1

    def spill(self, r: redis.Redis) -> None:
        """End of run, writes still failing: the rows go to a JSON-lines file (fsynced) beside the
        watermarks, so they are neither lost nor landed as if fine; then their entries are done."""
        path = self.cfg.watermark("_").with_name("unlanded.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as fh:
            for buffers in (self.market, self.dead):
                for (bucket, minute), buf in sorted(buffers.items()):
                    for kind, raw in buf.rows.items():
                        for b in raw:
                            fh.write(orjson.dumps({"bucket": bucket, "minute": minute, "kind": kind}) + b"\t" + b + b"\n")
                            self.c["spilled_rows"] += 1
            fh.flush()
            os.fsync(fh.fileno())
        for buffers in (self.market, self.dead):
            for buf in buffers.values():
                self._ack(r, buf)
            buffers.clear()

    def finish(self, r: redis.Redis) -> None:
        """End of run: land everything, retrying a failed write a few times before spilling it."""
        for attempt in range(FINAL_ATTEMPTS):
            self.land(r, final=True)
            if not (self.market or self.dead):
                break
            time.sleep(RETRY_S * (attempt + 1) / 2)
        if self.market or self.dead:
            self.spill(r)
        self.close_all()

    def settle(self, r: redis.Redis, skipped: list[tuple[str, bytes]]) -> None:
        """Entries given again that are not buffered were landed before (their ack was lost with a
        restarted Redis, or the harvester re-added them): acknowledge them now."""
        done, self.foreign = self.foreign, defaultdict(list)
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
        return {**self.c, "open_minutes": len(self.market) + len(self.dead), "buffered_entries": self.held,
                "closed_through_ms": dict(self.closed_through), "open_gap_trades": dict(self.gaps)}


def run(cfg: WorkerConfig, stop: StopFlag) -> None:
    lander = Lander(cfg)
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    r = bus.wait_ready(cfg.bus_url, timeout_s=3600)
    bus.ensure_groups(r, lander.streams, bus.GROUP_LANDER)
    beat.beat(lander.counters(), force=True)
    ready(NAME, f"streams={len(lander.streams)}")
    end = bus_admin.EndWatch(lander.keys, lander.streams)
    while not stop.is_set():
        try:
            ends = end.poll(r)
            if lander.held < cfg.lander_buffer_max:
                fresh, skipped = lander.reader.read(r, count=20_000, block_ms=200)
            else:  # the landing zone is refusing writes: Redis holds what comes meanwhile
                lander.c["read_paused"] += 1
                fresh, skipped = [], []
                time.sleep(0.2)
            lander.take(fresh)
            lander.settle(r, skipped)
            if ends and not fresh and lander.drained(r, ends):
                lander.finish(r)
                beat.beat(lander.counters(), force=True)
                return
            lander.land(r)
            lander.trim(r)
        except bus.BUS_ERRORS:
            lander.c["bus_errors"] += 1
            lander.reader.reset()  # Redis may have restarted: take the pending list again
            r = bus.reconnect(cfg.bus_url, lander.streams, bus.GROUP_LANDER) or r
        beat.beat(lander.counters())
    beat.beat(lander.counters(), force=True)


def main() -> None:
    stop = StopFlag()
    run(load_config(), stop)


if __name__ == "__main__":
    main()

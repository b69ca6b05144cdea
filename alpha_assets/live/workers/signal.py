"""Signal worker: ``md:<SYM>`` (group ``signal``) → ``engine.step_rows`` → ``sig:<SYM>``, sinks; acks.

Whatever has arrived for a symbol (one event or a burst) goes through one step, on the entries'
rows as they are (no frame); its rows are published to ``sig:<SYM>`` in the round trip of the next
read (id ``<trade's md ms>-<row ordinal>``: a replayed row is refused as a duplicate). The sinks
belong to a writer thread (``sink_writer``) so the loop never waits on them: by the batch policy
(``sink_batch_n`` rows or the oldest pending row ``sink_flush_ms`` old, wall clock; every batch with
0) the pending rows are handed over, written (SQLite commit, JSONL lines appended to the minute's
spool part, the minutes the event time has passed by ``lateness_ms`` published to ``ready/``) and
reported back: then the entries they came from are acknowledged, a latency record (which rows became
durable, when) goes to ``lat``, and at most every ``checkpoint_interval_s`` the checkpoint written
with them (engine state + the stream position it corresponds to, per symbol) becomes a hold on the
stream (``bus_admin.hold``), so trimming keeps what a restart needs.

A restart resumes exactly: the checkpoint's state, then the entries after its position up to what
the group had been given (XRANGE), then the pending list, then new entries. Rows computed again
are identical (deterministic engine, same input order): the sinks skip their keys and Redis
refuses their ids. At-least-once + idempotent = exactly-once effect.

End of run (``bus_admin.mark_end``): consume up to the marked ends, flush the engine (trades held
for a later book are evaluated), make everything durable, checkpoint, exit: the sinks then hold
exactly the rows of a batch run over the landed partition in the same book-join mode.

Memory stays bounded in a backlog: at most ``READ_COUNT`` entries per stream are read at a time,
``MAX_PENDING_ROWS`` rows wait for the writer, the producer's re-add ring is capped (``bus.Producer``).
``ALPHA_MEMTRACE=<file>`` (``memtrace``) reports where Python memory goes, for a run made to look.

    python -m alpha_assets.live.workers.signal
"""

from __future__ import annotations

import pickle
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from alpha_assets.engine import initial_state
from alpha_assets.engine.step import EngineState, step_rows
from alpha_assets.live import bus, bus_admin
from alpha_assets.live.workers.common import Heartbeat, StopFlag, WorkerConfig, load_config, ready
from alpha_assets.live.workers.memtrace import MemTrace
from alpha_assets.live.workers.sink_writer import Done, Job, SinkWriter
from alpha_assets.sinks import SinkConfig, make_sink

NAME = "signal"
CKPT_VERSION = 2
# rows held for the sink writer; beyond, reading waits for it (a backlog waits in the stream, not in
# this process: 50k rows here and 50k in the writer's job took the worker past 600 MB in a burst)
MAX_PENDING_ROWS = 10_000
# entries per stream and read: a backlog (a burst, a restart) is taken in chunks of this size, each
# decoded, stepped and handed on before the next, instead of tens of thousands materialised at once
READ_COUNT = 1_000
# the writer connection's page cache: the worker only appends (two right edges of the key and of the
# time index), and a cache that fills as signals.db grows would be 64 MiB of the worker's RSS
SQLITE_CACHE_KIB = 4_096
_ACK_CHUNK = 10_000  # ids per XACK


@dataclass
class SymbolEngine:
    symbol: str
    state: EngineState
    pos: bytes | None = None  # last md entry taken into the state
    n: int = 0  # rows emitted (the ordinal in signal ids)
    sig_ms: int = 0  # millisecond part of the last signal id
    # trade id → (md ms, harvester receive ns, read ns): latency data carried to the trade's signal row
    meta: dict[int, tuple[int, int | None, int | None]] = field(default_factory=dict)
    event_wm: int = 0  # newest trade event time taken in
    undurable: list[int] = field(default_factory=list)  # seqs written since the last durable point

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state.to_bytes(), "pos": self.pos, "n": self.n, "sig_ms": self.sig_ms,
                "meta": self.meta, "event_wm": self.event_wm}

    @staticmethod
    def restore(symbol: str, d: dict[str, Any]) -> SymbolEngine:
        return SymbolEngine(symbol, EngineState.from_bytes(d["state"]), d["pos"], int(d["n"]), int(d["sig_ms"]),
                            dict(d["meta"]), int(d.get("event_wm", 0)))


class SignalWorker:
    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.keys = bus.Keys(cfg.run_id)
        self.stream_of = {s: self.keys.md(s) for s in cfg.symbols}
        self.symbol_of = {v: k for k, v in self.stream_of.items()}
        self.reader = bus.GroupReader(bus.GROUP_SIGNAL, NAME, list(self.stream_of.values()))
        self.ckpt_path = cfg.checkpoint_dir() / "signal.ckpt"
        self.engines = self._load()
        self.resumed = self.ckpt_path.exists()
        for sym, eng in self.engines.items():
            self.reader.pos[self.stream_of[sym]] = eng.pos
        runtime = cfg.runtime_dir
        sink_cfg = SinkConfig.from_env(kind=cfg.sink, output_dir=runtime, batch_n=cfg.sink_batch_n,
                                       flush_ms=cfg.sink_flush_ms, sqlite_cache_kib=SQLITE_CACHE_KIB)
        self.flush_s, self.batch_n = sink_cfg.flush_ms / 1000, sink_cfg.batch_n
        # the writer thread applies the batch policy's writes; the worker decides when (wall clock)
        self.writer = SinkWriter(make_sink(sink_cfg, runtime, clock=lambda: time.time() * 1000), self.ckpt_path)
        self.producer = bus.Producer()
        self.pending: list[dict[str, Any]] = []  # rows not yet handed to the writer
        self.unacked: dict[str, list[bytes]] = {s: [] for s in self.stream_of.values()}
        self.first_pending: float | None = None
        self.last_ckpt = self.last_job = time.monotonic()
        self.c: dict[str, Any] = dict.fromkeys(("rows_written", "trades_in", "book_in", "entries", "steps",
                                                "durable_points", "checkpoints", "bus_errors", "replayed"), 0)
        self.c |= {"queue_dropped": 0, "step_ms_last": 0.0, "resumed": self.resumed}

    def _load(self) -> dict[str, SymbolEngine]:
        if self.ckpt_path.exists():
            blob = pickle.loads(self.ckpt_path.read_bytes())
            if blob.get("version") != CKPT_VERSION or blob.get("run_id") != self.cfg.run_id:
                raise RuntimeError(f"checkpoint {self.ckpt_path} belongs to another run/version; remove it to start over")
            return {s: SymbolEngine.restore(s, blob["engines"][s]) for s in self.cfg.symbols}
        overrides = self.cfg.engine_overrides() or None
        return {s: SymbolEngine(s, initial_state(s, overrides, run_id=self.cfg.run_id)) for s in self.cfg.symbols}

    # ------------------------------------------------------------------ the hot path
    def take(self, batches: list[tuple[str, list[bus.Entry]]], read_ns: int | None = None) -> None:
        rd = time.time_ns() if read_ns is None else read_ns
        for stream, entries in batches:
            eng = self.engines[self.symbol_of[stream]]
            trades: list[dict[str, Any]] = []
            books: list[dict[str, Any]] = []
            for entry_id, fields in entries:
                kind, body = bus.decode(fields)
                if kind == bus.KIND_TRADE:
                    trades.append(body)
                    eng.meta[int(body["agg_trade_id"])] = (bus.id_ms(entry_id), body.get("rn"), rd)
                    eng.event_wm = max(eng.event_wm, int(body.get("event_time_ms") or 0))
                elif kind == bus.KIND_BOOK:
                    books.append(body)
            t0 = time.perf_counter()
            # the entries' bodies are the canonical rows (+ ingest_seq, rn, g): no frame on the way
            eng.state, rows = step_rows(eng.state, trades, books)
            self.c["step_ms_last"] = round((time.perf_counter() - t0) * 1000, 3)
            eng.pos = entries[-1][0]
            self.unacked[stream].extend(e[0] for e in entries)
            self.c["entries"] += len(entries)
            self.c["trades_in"] += len(trades)
            self.c["book_in"] += len(books)
            self.c["steps"] += 1
            self.emit(eng, rows)

    def emit(self, eng: SymbolEngine, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        sn = time.time_ns()
        stream = self.keys.sig(eng.symbol)
        for d in rows:
            seq = int(d["seq"])
            md_ms, rn, *rd = eng.meta.pop(seq, (eng.sig_ms, None, None))  # (a v2 checkpoint has no rd)
            eng.n += 1
            eng.sig_ms = max(eng.sig_ms, md_ms)
            body = {"r": d, "rn": rn, "rd": rd[0] if rd else None, "sn": sn}
            self.producer.add(stream, bus.make_id(eng.sig_ms, eng.n), bus.encode(bus.KIND_SIGNAL, body))
            eng.undurable.append(seq)
        self.pending.extend(rows)
        self.c["rows_written"] += len(rows)
        if self.first_pending is None:
            self.first_pending = time.monotonic()

    # ------------------------------------------------------------------ durability, acks, checkpoint
    def settle(self, r: redis.Redis, force: bool = False) -> None:
        """Publish signal rows; take back what the sink writer made durable (ack, hold, latency
        records); hand it the next batch when the policy says so (or ``force``). Signal rows go out
        with the next read (one round trip), or here when something else is sent."""
        for done in self.writer.results():
            self.durable(r, done)
        if self.writer.busy:
            return
        now = time.monotonic()
        rows_due = bool(self.pending) and (force or self.flush_s == 0 or len(self.pending) >= self.batch_n
                                           or now - (self.first_pending or now) >= self.flush_s)
        # entries without rows (book updates, held trades) are acknowledged at the same pace
        idle_due = not self.pending and any(self.unacked.values()) and (
            force or now - self.last_job >= max(self.flush_s, 0.05))
        ckpt_due = force or now - self.last_ckpt >= self.cfg.checkpoint_interval_s
        if not (rows_due or idle_due or force):
            return
        wm = min((e.event_wm for e in self.engines.values() if e.event_wm), default=0)
        job = Job(rows=self.pending, acks=self.unacked, seqs={s: e.undurable for s, e in self.engines.items()},
                  advance_to=wm - self.cfg.lateness_ms if wm else None,
                  checkpoint=self.snapshot() if ckpt_due else None,
                  positions={s: e.pos for s, e in self.engines.items()})
        self.pending, self.first_pending, self.last_job = [], None, now
        self.unacked = {s: [] for s in self.stream_of.values()}
        for e in self.engines.values():
            e.undurable = []
        if ckpt_due:
            self.last_ckpt = now
        self.writer.submit(job)

    def durable(self, r: redis.Redis, done: Done) -> None:
        """The rows of ``done`` are durable: their latency records, the acks of their entries and
        the checkpoint's holds go out in one round trip (with any signal rows still queued)."""
        job = done.job
        for sym, seqs in job.seqs.items():
            if seqs:
                self.producer.add(self.keys.lat, "*", bus.encode(bus.KIND_LATENCY,
                                                                 {"k": "d", "s": sym, "q": seqs, "n": done.durable_ns}))

        def acks_and_holds(pipe: Any) -> None:
            for stream, ids in job.acks.items():
                for k in range(0, len(ids), _ACK_CHUNK):
                    pipe.xack(stream, bus.GROUP_SIGNAL, *ids[k:k + _ACK_CHUNK])
            if job.checkpoint is not None:
                for sym, pos in job.positions.items():
                    bus_admin.hold(pipe, self.keys, bus.GROUP_SIGNAL, self.stream_of[sym], pos or b"0-0")

        self.producer.flush(r, extra=acks_and_holds)
        self.c["durable_points"] += 1
        if job.checkpoint is not None:
            self.c["checkpoints"] += 1

    def snapshot(self) -> bytes:
        blob = {"version": CKPT_VERSION, "run_id": self.cfg.run_id, "written_at": time.time(),
                "engines": {s: e.snapshot() for s, e in self.engines.items()}}
        return pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL)

    def sync(self, r: redis.Redis, timeout_s: float = 60.0) -> None:
        """Everything handed over is durable and accounted (acks, holds, records)."""
        deadline = time.monotonic() + timeout_s
        while self.writer.busy and time.monotonic() < deadline:
            for done in self.writer.results(wait_s=0.05):
                self.durable(r, done)

    def checkpoint(self, r: redis.Redis) -> None:
        """Make everything durable and checkpoint now (the end of a run, a test)."""
        if len(self.producer):
            self.producer.flush(r)
        self.sync(r)
        self.settle(r, force=True)
        self.sync(r)

    def hold(self, r: redis.Redis) -> None:
        for sym, eng in self.engines.items():
            bus_admin.hold(r, self.keys, bus.GROUP_SIGNAL, self.stream_of[sym], eng.pos or b"0-0")

    # ------------------------------------------------------------------ restart and end of run
    def replay(self, r: redis.Redis) -> None:
        """Entries after the checkpoint that the group had already given out (acked or not)."""
        for sym, stream in self.stream_of.items():
            eng = self.engines[sym]
            groups = {g["name"].decode(): g for g in r.xinfo_groups(stream)}
            last = groups[bus.GROUP_SIGNAL]["last-delivered-id"]
            lo = b"(" + eng.pos if eng.pos else b"-"
            while last not in (b"0-0",) and (eng.pos is None or bus.id_parts(eng.pos) < bus.id_parts(last)):
                got = r.xrange(stream, min=lo, max=last, count=READ_COUNT)
                if not got:
                    break
                self.take([(stream, got)])
                self.c["replayed"] += len(got)
                if eng.pos is None:  # take() consumed nothing of what it was given
                    break
                lo = b"(" + eng.pos
            self.reader.pos[stream] = eng.pos

    def drained(self, ends: dict[str, str]) -> bool:
        return all(bus_admin.covered(e.pos, ends.get(self.keys.short(self.stream_of[s])))
                   for s, e in self.engines.items())

    def finish(self, r: redis.Redis) -> None:
        """End of stream: release the trades still waiting for a book, make everything durable."""
        for eng in self.engines.values():
            eng.state, rows = step_rows(eng.state, final=True)
            self.emit(eng, rows)
        self.checkpoint(r)
        for done in self.writer.close():
            self.durable(r, done)

    def counters(self) -> dict[str, Any]:
        return {**self.c, "signals_total": sum(e.n for e in self.engines.values()),
                "positions": {s: (e.pos or b"").decode() for s, e in self.engines.items()},
                # accounting: trades with an event time below this have been taken in
                "next_minute_ms": {s: e.event_wm + 1 for s, e in self.engines.items()},
                "pending_trades": {s: int(getattr(e.state, "pending_trades", 0)) for s, e in self.engines.items()},
                "sink_failing": self.writer.counters["sink_failing"],  # a health probe's zero field
                "bus": dict(self.producer.c), "writer": {k: v for k, v in self.writer.counters.items() if k != "sink"},
                "sink": self.writer.sink_counters()}


def run(cfg: WorkerConfig, stop: StopFlag) -> None:
    w = SignalWorker(cfg)
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    trace = MemTrace.from_env(NAME)  # None unless a run is made to find where memory goes
    r = bus.wait_ready(cfg.bus_url, timeout_s=3600)
    bus.ensure_groups(r, w.stream_of.values(), bus.GROUP_SIGNAL)
    w.hold(r)
    beat.beat(w.counters(), force=True)
    ready(NAME, f"sink={cfg.sink} book_join={cfg.book_join} resumed={w.resumed}")
    w.replay(r)  # catching up is consuming: it comes after ready, as the loop does
    w.settle(r)
    end = bus_admin.EndWatch(w.keys, w.stream_of.values())
    while not stop.is_set():
        try:
            ends = end.poll(r)
            block = 100
            if w.writer.busy:  # its report is taken at the next wake: keep that close
                block = 5
            elif w.first_pending is not None:  # wake when the oldest pending row is due
                block = max(1, min(100, int((w.first_pending + w.flush_s - time.monotonic()) * 1000) + 1))
            if w.writer.busy and len(w.pending) >= MAX_PENDING_ROWS:
                w.sync(r)  # the sinks are behind: the stream keeps the rest until they catch up
            fresh, skipped = w.reader.read(r, count=READ_COUNT, block_ms=block, producer=w.producer)
            w.take(fresh, time.time_ns())
            for stream, entry_id in skipped:  # taken in before: its effect is in the state already
                w.unacked[stream].append(entry_id)
            w.settle(r)
            if ends and not fresh and w.drained(ends):
                w.finish(r)
                beat.beat(w.counters(), force=True)
                return
        except bus.BUS_ERRORS:
            w.c["bus_errors"] += 1
            w.reader.reset()
            r = bus.reconnect(cfg.bus_url, w.stream_of.values(), bus.GROUP_SIGNAL) or r
        if beat.due():  # the counters (the sinks' included) are built once a beat, not per read
            beat.beat(w.counters())
            if trace is not None:
                trace.beat(f"pending={len(w.pending)} entries={w.c['entries']}")
    try:
        w.checkpoint(r)
    except bus.BUS_ERRORS:
        pass  # the checkpoint on disk and the pending list cover what was not acknowledged
    w.writer.close()
    beat.beat(w.counters(), force=True)


def main() -> None:
    # the sink writer thread must not keep the loop from the GIL for the default 5 ms
    sys.setswitchinterval(0.0005)
    stop = StopFlag()
    run(load_config(), stop)


if __name__ == "__main__":
    main()

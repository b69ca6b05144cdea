"""Broker worker: ``sig:<SYM>`` (group ``broker``) → pre-trade/risk → MockExecutor → execution outbox.

Prices come from the live book: the broker follows ``md:<SYM>`` (a plain XREAD of its book rows,
primed with the recent ones at start) and routes each batch of signal rows against the book rows
received so far, the risk window (``vol_window_ms``) included. One Router for the run: kill
switch, loss limits and idempotency memory carry across batches. Entries are acknowledged once
the outbox has their orders (flushed to the OS); a restarted broker re-reads its pending list
and skips every signal the outbox already holds an order for (keyed by signal row id), so
nothing is routed twice even though the book it would price against has moved on. For the
latency figures the time of each order's acknowledgement goes to ``lat``.

    python -m alpha_assets.live.workers.broker
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import redis

from alpha_assets.live import bus, bus_admin
from alpha_assets.live.workers.common import Heartbeat, StopFlag, WorkerConfig, load_config, ready
from alpha_assets.market.schema import BOOK_SCHEMA
from alpha_assets.sinks.schema import SIGNAL_SCHEMA
from executors.batch import SIDES, RouteConfig, Router
from executors.outbox import Outbox, signal_row_id

NAME = "broker"
PRIME_ENTRIES = 20_000


def routed_signals(runtime: Path, run_id: str) -> set[str]:
    """Signal row ids the outbox already holds an order for (ready files; the Outbox recovered parts)."""
    out: set[str] = set()
    prefix = f"{run_id}:"
    for p in sorted((Path(runtime) / "exec_events").glob("*/exec_*.jsonl")):
        for line in p.read_bytes().splitlines():
            if line.strip():
                rid = orjson.loads(line).get("signal_row_id", "")
                if rid.startswith(prefix):
                    out.add(rid)
    return out


class LiveBook:
    """Book rows of one symbol received so far; what no signal can still need is dropped."""

    def __init__(self, keep_ms: int) -> None:
        self.keep_ms = keep_ms
        self.frame = pl.DataFrame(schema=BOOK_SCHEMA)
        self._pending: list[dict[str, Any]] = []

    def add(self, body: dict[str, Any]) -> None:
        self._pending.append(body)

    def current(self, oldest_signal_ms: int) -> pl.DataFrame:
        """The rows, from the risk window before the oldest signal about to be routed on."""
        f = self.frame
        if self._pending:
            new = pl.DataFrame({c: [b.get(c) for b in self._pending] for c in BOOK_SCHEMA}, schema=BOOK_SCHEMA)
            self._pending = []
            f = pl.concat([f, new], how="vertical", rechunk=False)
        lo = oldest_signal_ms - self.keep_ms
        if f.height > 64 and int(f["event_time_ms"][0]) < lo - self.keep_ms:  # trim now and then, not per call
            f = f.filter(pl.col("event_time_ms") >= lo).rechunk()
        self.frame = f
        return f


class Broker:
    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.keys = bus.Keys(cfg.run_id)
        self.runtime = cfg.runtime_dir
        self.sig_streams = {self.keys.sig(s): s for s in cfg.symbols}
        self.md_streams = {self.keys.md(s): s for s in cfg.symbols}
        self.reader = bus.GroupReader(bus.GROUP_BROKER, NAME, list(self.sig_streams))
        self.outbox = Outbox(self.runtime)
        self.routed = routed_signals(self.runtime, cfg.run_id)
        route_cfg = RouteConfig()
        self.router = Router("mock", route_cfg, cfg.run_id, outbox=self.outbox)
        keep = route_cfg.risk.vol_window_ms + 10_000
        self.books = {s: LiveBook(keep) for s in cfg.symbols}
        self.md_cursor: dict[str, bytes] = {}
        self.producer = bus.Producer()
        self.c: dict[str, Any] = {"signals_in": 0, "orders": 0, "filled": 0, "rejected": 0, "buy": 0, "sell": 0,
                                  "skipped_routed": len(self.routed), "book_rows": 0, "errors": 0, "last_error": "",
                                  "bus_errors": 0, "paper": cfg.paper}

    def prime(self, r: redis.Redis) -> None:
        """The recent book rows of each symbol, and where to follow the stream from."""
        for stream, sym in self.md_streams.items():
            got = r.xrevrange(stream, count=PRIME_ENTRIES)
            self.md_cursor[stream] = got[0][0] if got else b"0-0"
            for _entry_id, fields in reversed(got):
                if bus.KIND_BOOK in fields:
                    self.books[sym].add(bus.decode(fields)[1])

    def follow_book(self, r: redis.Redis) -> None:
        got = r.xread(self.md_cursor, count=100_000)
        for name, entries in got or []:
            stream = name.decode() if isinstance(name, bytes) else name
            sym = self.md_streams[stream]
            for _entry_id, fields in entries:
                if bus.KIND_BOOK in fields:
                    self.books[sym].add(bus.decode(fields)[1])
                    self.c["book_rows"] += 1
            self.md_cursor[stream] = entries[-1][0]

    def route(self, r: redis.Redis, batches: list[tuple[str, list[bus.Entry]]]) -> None:
        rows: list[dict[str, Any]] = []
        for _stream, entries in batches:
            for _, fields in entries:
                _, body = bus.decode(fields)
                row = body["r"]
                self.c["signals_in"] += 1
                key = signal_row_id(self.cfg.run_id, row["symbol"], int(row["seq"]))
                if row.get("signal_type") in SIDES and row.get("score") is not None and key not in self.routed:
                    rows.append(row)
        if rows:
            self.follow_book(r)
            sig = pl.DataFrame({c: [x.get(c) for x in rows] for c in SIGNAL_SCHEMA}, schema=SIGNAL_SCHEMA)
            symbols = sorted({x["symbol"] for x in rows})
            oldest = int(sig["ts_ms"].min() or 0)
            book = pl.concat([self.books[s].current(oldest) for s in symbols if s in self.books], how="vertical")
            orders = self.router.route(sig, book)  # the outbox is flushed before it returns
            ns = time.time_ns()
            for (sym,), part in orders.group_by("symbol", maintain_order=True):
                self.producer.add(self.keys.lat, "*", bus.encode(bus.KIND_LATENCY, {
                    "k": "o", "s": sym, "q": part["signal_seq"].to_list(), "st": part["status"].to_list(), "n": ns}))
            self.routed.update(signal_row_id(self.cfg.run_id, x["symbol"], int(x["seq"])) for x in rows)
            self.c["orders"] += orders.height
            self.c["filled"] += orders.filter(pl.col("status") == "filled").height
            self.c["rejected"] += orders.filter(pl.col("status") == "rejected").height
            self.c["buy"] += orders.filter(pl.col("side") == "BUY").height
            self.c["sell"] += orders.filter(pl.col("side") == "SELL").height
        if len(self.producer):
            self.producer.flush(r)
        for stream, entries in batches:
            bus.ack(r, stream, bus.GROUP_BROKER, [e[0] for e in entries])

    def drained(self, r: redis.Redis, ends: dict[str, str]) -> bool:
        return all(self.keys.short(s) in ends and bus_admin.covered(self.reader.taken_through(r, s),
                                                                     ends[self.keys.short(s)])
                   for s in self.sig_streams)


def run(cfg: WorkerConfig, stop: StopFlag) -> None:
    b = Broker(cfg)
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    r = bus.wait_ready(cfg.bus_url, timeout_s=3600)
    bus.ensure_groups(r, b.sig_streams, bus.GROUP_BROKER)
    b.prime(r)
    beat.beat(b.c, force=True)
    ready(NAME, f"paper={cfg.paper}")
    ends: dict[str, str] = {}
    next_end_check = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_end_check and not all(b.keys.short(s) in ends for s in b.sig_streams):
                next_end_check = time.monotonic() + 0.5
                ends = bus_admin.read_end(r, b.keys)
            fresh, skipped = b.reader.read(r, count=2_000, block_ms=100)
            for stream, entry_id in skipped:
                bus.ack(r, stream, bus.GROUP_BROKER, [entry_id])
            b.route(r, fresh)
            if not fresh:
                b.follow_book(r)  # idle: keep the book current so a burst of signals does not wait on it
            if ends and not fresh and b.drained(r, ends):
                break
        except bus.BUS_ERRORS:
            b.c["bus_errors"] += 1
            b.reader.reset()
            time.sleep(0.1)
            try:
                r = bus.wait_ready(cfg.bus_url, timeout_s=5)
                bus.ensure_groups(r, b.sig_streams, bus.GROUP_BROKER)
            except TimeoutError:
                pass
        except Exception as exc:  # a bad batch is counted; its entries stay pending and are retried
            b.c["errors"] += 1
            b.c["last_error"] = f"{type(exc).__name__}: {exc}"
            b.reader.reset()
            time.sleep(0.5)
        beat.beat(b.c)
    b.outbox.close()
    beat.beat(b.c, force=True)


def main() -> None:
    stop = StopFlag()
    run(load_config(), stop)


if __name__ == "__main__":
    main()

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

import numpy as np
import orjson
import redis

from alpha_assets.live import bus, bus_admin
from alpha_assets.live.workers.common import Heartbeat, StopFlag, WorkerConfig, load_config, ready
from alpha_assets.market.schema import LEVELS
from executors.batch import SIDES, RouteConfig, Router
from executors.book import BookIndex, SymbolBook
from executors.mock import MockExecutor
from executors.outbox import Outbox, signal_row_id

NAME = "broker"
PRIME_ENTRIES = 20_000
_SIDES = ("bid_px", "bid_qty", "ask_px", "ask_qty")


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
    """The book rows of one symbol received so far, as the executor's as-of arrays (grown in place,
    old rows dropped once no signal can need them), and each signal's market view from them: what
    ``executors.batch._market_view`` computes from a frame, without one."""

    def __init__(self, keep_ms: int, window_ms: int) -> None:
        self.keep_ms, self.window_ms = keep_ms, window_ms
        self.ts = np.empty(0, dtype=np.int64)
        self.px = {k: np.empty((0, LEVELS)) for k in _SIDES}
        self.n = 0
        self.out_of_order = 0

    def add(self, body: dict[str, Any]) -> None:
        t = body.get("event_time_ms")
        if t is None or (self.n and t < self.ts[self.n - 1]):
            self.out_of_order += 1  # an as-of index needs time order; such a row cannot be placed
            return
        if self.n == len(self.ts):
            cap = max(1024, 2 * self.n)
            self.ts = np.resize(self.ts, cap)
            self.px = {k: np.resize(v, (cap, LEVELS)) for k, v in self.px.items()}
        self.ts[self.n] = t
        for k, arr in self.px.items():
            arr[self.n] = [_f(body.get(f"{k}_{i}")) for i in range(1, LEVELS + 1)]
        self.n += 1

    def trim(self, oldest_ms: int) -> None:
        """Drop rows no signal at or after ``oldest_ms`` can reach (the risk window before it)."""
        cut = int(np.searchsorted(self.ts[: self.n], oldest_ms - self.keep_ms, side="left")) - 1
        if cut > 1024 and cut > self.n // 2:
            self.ts[: self.n - cut] = self.ts[cut: self.n]
            for arr in self.px.values():
                arr[: self.n - cut] = arr[cut: self.n]
            self.n -= cut

    def symbol_book(self) -> SymbolBook:
        n = self.n
        return SymbolBook(self.ts[:n], self.px["bid_px"][:n], self.px["bid_qty"][:n], self.px["ask_px"][:n],
                          self.px["ask_qty"][:n])

    def view(self, ts_ms: int) -> tuple[float | None, float | None, float | None, float | None, int | None]:
        """(bid, ask, mid high, mid low over the risk window up to that row, time) of the last row at or
        before ``ts_ms``; all None without one."""
        ts = self.ts[: self.n]
        i = int(np.searchsorted(ts, ts_ms, side="right")) - 1
        if i < 0:
            return None, None, None, None, None
        lo = int(np.searchsorted(ts, ts[i] - self.window_ms, side="right"))
        mid = (self.px["bid_px"][lo: i + 1, 0] + self.px["ask_px"][lo: i + 1, 0]) / 2
        ok = mid[~np.isnan(mid)]
        bid, ask = self.px["bid_px"][i, 0], self.px["ask_px"][i, 0]
        return (None if bid != bid else float(bid), None if ask != ask else float(ask),
                float(ok.max()) if ok.size else None, float(ok.min()) if ok.size else None, int(ts[i]))


class LiveBookIndex(BookIndex):
    """What MockExecutor asks of a book index (``get(symbol)``), over the live books."""

    def __init__(self, books: dict[str, LiveBook]) -> None:
        super().__init__(None)
        self.live = books

    def get(self, symbol: str) -> SymbolBook | None:
        b = self.live.get(symbol)
        return b.symbol_book() if b is not None and b.n else None


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


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
        window = route_cfg.risk.vol_window_ms
        self.books = {s: LiveBook(window + 60_000, window) for s in cfg.symbols}
        # the executor fills against the live book itself (not a frame rebuilt per batch)
        self.router = Router(MockExecutor(LiveBookIndex(self.books), route_cfg.mock), route_cfg, cfg.run_id,
                             outbox=self.outbox)
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
                row = bus.decode(fields)[1]["r"]
                self.c["signals_in"] += 1
                key = signal_row_id(self.cfg.run_id, row["symbol"], int(row["seq"]))
                if row.get("signal_type") in SIDES and row.get("score") is not None and key not in self.routed:
                    rows.append(row)
        if rows:
            self.follow_book(r)  # every book row received before these signals' trades
            rows.sort(key=lambda x: (x["ts_ms"], x["symbol"], x["seq"]))
            orders = self.router.route_rows(rows, [self.books[x["symbol"]].view(int(x["ts_ms"])) for x in rows])
            ns = time.time_ns()  # the executor acknowledged (the outbox has them, flushed)
            by_symbol: dict[str, list[dict[str, Any]]] = {}
            for o in orders:
                by_symbol.setdefault(o["symbol"], []).append(o)
            for sym, part in by_symbol.items():
                self.producer.add(self.keys.lat, "*", bus.encode(bus.KIND_LATENCY, {
                    "k": "o", "s": sym, "q": [o["signal_seq"] for o in part], "st": [o["status"] for o in part],
                    "n": ns}))
                self.books[sym].trim(min(int(o["ts_ms"]) for o in part))
            self.routed.update(signal_row_id(self.cfg.run_id, x["symbol"], int(x["seq"])) for x in rows)
            for o in orders:
                self.c["orders"] += 1
                self.c[o["status"]] = self.c.get(o["status"], 0) + 1
                self.c["buy" if o["side"] == "BUY" else "sell"] += 1
        def acks(pipe: Any) -> None:  # in the same round trip as the latency records
            for stream, entries in batches:
                pipe.xack(stream, bus.GROUP_BROKER, *[e[0] for e in entries])

        if batches:
            self.producer.flush(r, extra=acks)

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
    end = bus_admin.EndWatch(b.keys, b.sig_streams)
    while not stop.is_set():
        try:
            ends = end.poll(r)
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
            r = bus.reconnect(cfg.bus_url, b.sig_streams, bus.GROUP_BROKER) or r
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

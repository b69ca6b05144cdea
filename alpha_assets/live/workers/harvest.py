"""Harvest worker: WebSocket → validation/dedup/dead-letter (the feed client) → XADD, as frames arrive.

Each frame the client handles is published at once: its market events to ``md:<SYM>`` with the
next ingest sequence number of the symbol (arrival order, shared by trades and book rows), its
dead letters to the dead-letter stream of the symbol of the stream they came on
(``deadletter_bucket``: never a symbol a message merely claims), or ``dlq:_UNROUTED`` when that is
no configured symbol. The feed client validates every frame by its stream, then its content
(``market.validation``), keeps ids continuous (``market.continuity``) and is configured by
``WorkerConfig.ws_client``. The frames the WebSocket library holds are handled in one loop turn
(no task or timer per frame) and their entries go out in one pipelined round trip of the sync
client, followed by the symbols' resume states (``harvest_state``). Besides the canonical row
an entry carries ``ingest_seq``, ``rn`` (receive time, ns: data for the latency figures) and
``g`` (trade ids the client is still backfilling: the lander keeps a minute open while > 0).

Resuming (a restart of this worker) starts from what the stream holds (``harvest_state``): the
feed client is seeded with the ledger of trade ids in the stream — its contiguous prefix and the
ranges above — so it backfills exactly the holes (a gap open at stop was reported as an ``id_gap``
dead letter and stays a hole); trades already in the stream are not published twice.

Redis away: entries wait in a bounded queue (``bus_buffer_max``) and are written when it is back;
the last seconds written are re-added then too (Redis may have lost them; duplicates are refused
by id). Past the bound nothing more is queued: the trades are fetched again by REST once Redis is
back (the client is re-seeded after the last queued trade) and the book resyncs with its next
snapshot; ``overflow_trades``/``overflow_books`` count them.

    python -m alpha_assets.live.workers.harvest
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from alpha_assets.live import bus
from alpha_assets.live.workers.common import (
    Heartbeat,
    StopFlag,
    WorkerConfig,
    load_config,
    read_json,
    ready,
    write_quick,
)
from alpha_assets.live.workers.harvest_state import SymbolState
from alpha_assets.market.landing import deadletter_bucket
from alpha_assets.market.schema import UNROUTED, dead_letter
from alpha_assets.market.ws_client import Item, MarketWsClient, WsClientConfig
from alpha_assets.reports.atomic import write_text_atomic

NAME = "harvest"
_STATE_FIELD = b"state"
INGEST_ORIGIN = 1_000_000
_TAIL_PAGE = 10_000
_KIND = {"trade": bus.KIND_TRADE, "book": bus.KIND_BOOK, "deadletter": bus.KIND_DEAD}


class FeedClient(MarketWsClient):
    """The feed client, handing over what each frame produced the moment it is handled."""

    def __init__(self, cfg: WsClientConfig, on_items: Any) -> None:
        super().__init__(cfg)
        self.on_items = on_items

    def handle(self, raw: str | bytes, recv_ms: int | None = None) -> None:
        ns = time.time_ns()
        super().handle(raw, ns // 1_000_000 if recv_ms is None else recv_ms)
        self.on_items(self.drain(), ns)


class Harvester:
    def __init__(self, cfg: WorkerConfig, states: dict[str, SymbolState], totals: dict[str, int]) -> None:
        self.cfg = cfg
        self.keys = bus.Keys(cfg.run_id)
        self.states = states
        self.base = totals  # counters of earlier incarnations of this run
        # bounded while Redis is away (a backfill burst with Redis there is written as it comes)
        self.producer = bus.Producer(max_pending=10_000_000)
        self.bus_down = False
        self.client = FeedClient(client_config(cfg), self.on_items)
        for sym in cfg.symbols:
            self._seed(sym)
        self.wake = asyncio.Event()
        self.dirty: set[str] = set()  # symbols whose state changed since the last flush
        self.overflowed: set[str] = set()
        self.c: dict[str, int] = dict.fromkeys(
            ("md_entries", "dlq_entries", "replayed_trades", "overflow_trades", "overflow_books",
             "overflow_deadletters", "foreign_symbol", "unrouted_deadletters"), 0)
        self.lat_ms: list[int] = []
        self.latency_p99_ms = 0
        self.rate_marks: list[tuple[float, int]] = []  # (monotonic s, messages) over the last second

    # ------------------------------------------------------------------ frames → entries
    def on_items(self, items: list[Item], ns: int) -> None:
        for kind, row in items:
            self.add(kind, row, ns)
        if items:
            self.wake.set()

    def _room(self) -> bool:
        return not self.bus_down or len(self.producer) < self.cfg.bus_buffer_max

    def _seed(self, sym: str) -> None:
        st = self.states[sym]
        if st.ledger.prefix is not None or st.last_update_id is not None:
            self.client.seed(sym, None, st.last_update_id, ledger=st.ledger)

    def add(self, kind: str, row: dict[str, Any], ns: int) -> None:
        ms = ns // 1_000_000
        if kind != "deadletter" and row.get("symbol") not in self.cfg.symbols:
            # the client lets no such row through (validation by stream); should one come, it is
            # filed as a dead letter of no symbol rather than under another symbol
            self.c["foreign_symbol"] += 1
            row = dead_letter(kind, "unrouted_row", row.get("symbol"), row.get("event_time_ms"), None, row,
                              stream=row.get("stream"), recv_time_ms=row.get("recv_time_ms") or ms)
            kind = "deadletter"
        if kind == "deadletter":
            self._dead(row, ms, ns)
            return
        sym = row["symbol"]
        st = self.states[sym]
        if kind == "trade" and row["agg_trade_id"] in st.ledger:
            self.c["replayed_trades"] += 1  # a backfill fetched what the stream already has
            return
        seq, mms = st.seq + 1, max(ms, st.md_ms)
        row["ingest_seq"], row["rn"], row["g"] = seq, ns, self.client.open_gaps(sym)
        if kind == "trade" and row.get("recv_time_ms") is not None and row.get("event_time_ms") is not None:
            self.lat_ms.append(int(row["recv_time_ms"]) - int(row["event_time_ms"]))
        if not (self._room() and self.producer.add(self.keys.md(sym), bus.make_id(mms, seq),
                                                   bus.encode(_KIND[kind], row), ns)):
            self.c["overflow_trades" if kind == "trade" else "overflow_books"] += 1
            self.overflowed.add(sym)
            return
        st.seq, st.md_ms = seq, mms
        st.note(bus.KIND_TRADE if kind == "trade" else bus.KIND_BOOK, row)
        self.c["md_entries"] += 1
        self.dirty.add(sym)

    def _dead(self, row: dict[str, Any], ms: int, ns: int) -> None:
        bucket = deadletter_bucket(row, self.cfg.symbols)
        self.c["unrouted_deadletters"] += bucket == UNROUTED
        st = self.states[bucket]
        dseq, dms = st.dseq + 1, max(ms, st.dlq_ms)
        if not (self._room() and self.producer.add(self.keys.dlq(bucket), bus.make_id(dms, dseq),
                                                   bus.encode(bus.KIND_DEAD, row), ns)):
            # Redis away past the buffer: a dead letter cannot be fetched again; counted, so the
            # figures show what the dead-letter files miss
            self.c["overflow_deadletters"] += 1
            return
        st.dseq, st.dlq_ms = dseq, dms
        st.note(bus.KIND_DEAD, row)
        self.c["dlq_entries"] += 1
        self.dirty.add(bucket)

    # ------------------------------------------------------------------ publishing
    def flush(self, r: redis.Redis) -> None:
        """Everything queued, then the changed symbols' resume states, in one pipelined round trip.
        A blocking call on the loop: the sync client packs commands in C (hiredis), several times
        cheaper per entry than the asyncio client, and frames arriving meanwhile wait in the
        library's queue, to go out together in the next round trip."""
        dirty, self.dirty = self.dirty, set()
        if not len(self.producer) and not self.producer.resend_ring and not dirty:
            return

        def states(pipe: Any) -> None:
            for sym in sorted(dirty):
                pipe.hset(self.keys.harvest_state(sym), _STATE_FIELD, self.states[sym].dumps())

        try:
            self.producer.flush(r, extra=states)
        except bus.BUS_ERRORS:
            self.dirty |= dirty
            self.bus_down = True
            raise
        self.bus_down = False
        if self.overflowed and not len(self.producer):
            # Redis took everything queued: the client starts again below the first trade id not
            # queued, so its next trade reveals (and backfills) what was left out; what the stream
            # has already is not published twice (the ids guard in add)
            for sym in sorted(self.overflowed):
                self._seed(sym)
            self.overflowed.clear()

    async def publisher(self, r: redis.Redis, stop: asyncio.Event) -> None:
        """Publish what each loop turn brought (the frames the library held are handled in one turn);
        drain the client's backfills; retry while Redis is away, with back-off."""
        backoff, retry_at = 0.05, 0.0
        while True:
            if not stop.is_set():
                try:
                    await asyncio.wait_for(self.wake.wait(), 0.05)
                except TimeoutError:
                    pass
            self.wake.clear()
            late = self.client.drain()  # backfilled trades arrive without a frame
            if late:
                self.on_items(late, time.time_ns())
            if self.bus_down and time.monotonic() < retry_at:
                await asyncio.sleep(min(0.05, retry_at - time.monotonic()))
                continue
            try:
                self.flush(r)
                backoff = 0.05
            except bus.BUS_ERRORS:
                retry_at = time.monotonic() + backoff
                backoff = min(1.0, backoff * 2)
                continue
            if stop.is_set() and not len(self.producer) and not self.dirty and not self.client.pending():
                return

    # ------------------------------------------------------------------ figures
    def totals(self) -> dict[str, int]:
        now = {**self.client.counters.as_dict(), **self.c, **{f"bus_{k}": v for k, v in self.producer.c.items()}}
        return {k: int(now.get(k, 0)) + int(self.base.get(k, 0)) for k in set(now) | set(self.base)}

    def counters(self) -> dict[str, Any]:
        if self.lat_ms:
            lat = sorted(self.lat_ms)
            self.latency_p99_ms = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            self.lat_ms.clear()
        return {**self.totals(), "open_gap_trades": self.client.open_gaps(), "bus_pending": len(self.producer),
                "messages_per_s": self.message_rate(),
                "latency_p99_ms": self.latency_p99_ms, "gap_reports": self.client.gap_reports[-20:],
                "ingest_seq": {s: st.seq for s, st in self.states.items() if s != UNROUTED},
                "deadletter_by_reason": dict(self.client.deadletter_reasons.most_common(50)),
                "streamed_prefix": {s: self.states[s].ledger.prefix for s in self.cfg.symbols},
                "bounds_in_use": self.client.bounds_in_use()}


    def message_rate(self) -> float:
        """Frames received per second over the last second or so (a burst of the feed shows here)."""
        now, n = time.monotonic(), self.client.counters.messages
        self.rate_marks.append((now, n))
        while len(self.rate_marks) > 2 and now - self.rate_marks[1][0] >= 1.0:
            del self.rate_marks[0]
        t0, n0 = self.rate_marks[0]
        return round((n - n0) / (now - t0), 1) if now > t0 else 0.0


def client_config(cfg: WorkerConfig) -> WsClientConfig:
    """The feed client's configuration: the run's URLs and read timeout, then ``cfg.ws_client``."""
    return WsClientConfig.model_validate({"url": cfg.ws_url, "rest_url": cfg.rest_url,
                                          "read_timeout_s": cfg.read_timeout_s, **cfg.ws_client})


async def load_states(r: aioredis.Redis, keys: bus.Keys, symbols: list[str], origin: int) -> dict[str, SymbolState]:
    """What the streams hold: each saved state brought up to the entries written after it (the
    harvester may have died between its entries and its state). A new stream starts its ingest
    sequence at ``origin``. The dead letters of no symbol have a state of their own (``_UNROUTED``)."""
    out = {}
    for s in [*symbols, UNROUTED]:
        raw = await r.hget(keys.harvest_state(s), _STATE_FIELD)
        st = SymbolState.loads(raw) if raw else SymbolState(seq=origin if s != UNROUTED else 0)
        # page by page: a state lost altogether means reading the whole stream, in bounded memory
        while s != UNROUTED:
            page = await r.xrange(keys.md(s), min=f"({bus.make_id(st.md_ms, st.seq)}", count=_TAIL_PAGE)
            if not st.apply_tail(page, []):
                break
        while True:
            page = await r.xrange(keys.dlq(s), min=f"({bus.make_id(st.dlq_ms, st.dseq)}", count=_TAIL_PAGE)
            if not st.apply_tail([], page):
                break
        out[s] = st
    return out


async def wait_bus(url: str, stop: StopFlag) -> aioredis.Redis:
    """Redis must answer before anything is published: the ids continue from what it holds."""
    while True:
        r = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            await r.ping()
            return r
        except (*bus.BUS_ERRORS, aioredis.BusyLoadingError):
            await r.aclose()
            if stop.is_set():
                raise
            await asyncio.sleep(0.1)


async def run(cfg: WorkerConfig, stop: StopFlag) -> None:
    totals_path = cfg.runtime_dir / "harvest" / cfg.run_id / "totals.json"
    saved = read_json(totals_path).get("totals", {})
    base = {k: int(v) for k, v in saved.items()}
    if saved:  # a restart is itself a reconnect
        base["reconnect_count"] = base.get("reconnect_count", 0) + 1
        base["restarts_seen"] = base.get("restarts_seen", 0) + 1
    r = await wait_bus(cfg.bus_url, stop)
    keys = bus.Keys(cfg.run_id)
    # Ingest sequences start at the run's start (ms) × 10^6: two soaks landing the same partition one
    # after the other keep their events apart in ingest order, as in time.
    h = Harvester(cfg, await load_states(r, keys, cfg.symbols, cfg.start_ms * INGEST_ORIGIN), base)
    beat = Heartbeat(cfg.heartbeat_path(NAME), NAME, cfg.heartbeat_s)
    astop, pstop = asyncio.Event(), asyncio.Event()
    feed = asyncio.create_task(h.client.run(astop))
    # publishing uses the sync client (see Harvester.flush); a short timeout: a hung Redis is retried
    publish_bus = bus.connect(cfg.bus_url, timeout_s=2.0)
    pub = asyncio.create_task(h.publisher(publish_bus, pstop))
    beat.beat(h.counters(), force=True)
    ready(NAME, cfg.ws_url)
    # Connection changes are beaten at once, and so is the first sign of data after one: the
    # supervisor and the fault watcher read recovery from these beats, not a second later.
    seen_connects, flow_mark = h.client.counters.connects, None
    next_totals = 0.0
    while not stop.is_set():
        await asyncio.sleep(0.1)
        counters = h.counters()
        changed = counters["connects"] != seen_connects
        flowing = flow_mark is not None and counters["messages"] > flow_mark
        beat.beat(counters, force=changed or flowing)
        if changed:
            seen_connects, flow_mark = counters["connects"], counters["messages"]
        elif flowing:
            flow_mark = None
        if time.monotonic() >= next_totals:
            next_totals = time.monotonic() + 1.0
            write_quick(totals_path, json.dumps({"totals": h.totals(), "ts": time.time()}).encode())
    astop.set()
    # the client backfills its open gaps (for up to stop_backfill_s) before it returns
    await asyncio.wait_for(feed, h.client.cfg.stop_backfill_s + 15)
    pstop.set()
    h.wake.set()
    try:
        await asyncio.wait_for(pub, 30)
    except TimeoutError:
        pub.cancel()
    write_text_atomic(totals_path, json.dumps({"totals": h.totals(), "ts": time.time()}))
    beat.beat(h.counters(), force=True)
    publish_bus.close()
    await r.aclose()


def main() -> None:
    stop = StopFlag()
    cfg = load_config()
    Path(cfg.data_root).mkdir(parents=True, exist_ok=True)
    asyncio.run(run(cfg, stop))


if __name__ == "__main__":
    main()

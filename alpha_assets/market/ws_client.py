"""Client of the Binance USD-M futures combined stream (the real endpoint or the local simulator).

* frames are read as bytes (``recv(decode=False)``): invalid UTF-8 is a dead letter, not a
  dropped connection; a frame over ``validation.max_frame_bytes`` is dead-lettered with its head;
  one over ``ws_max_size_bytes`` makes the library close the connection — counted
  (``oversize_disconnects``), dead-lettered, and followed by an immediate reconnect whose gap is
  backfilled like any other (a reconnect no live trade follows asks REST for the tail: ``tail_probes``);
* every frame is validated by its stream, then its content (validation.py); ids are kept
  continuous per symbol (continuity.py): duplicates are dead letters, gaps (ranges) are fetched
  from REST ``/fapi/v1/aggTrades?fromId=`` after ``gap_grace_s``, a jump beyond
  ``max_trade_id_jump`` is held until the next trade confirms it (a counted resync) or shows it
  bogus (dead letter ``id_jump``); what cannot be fetched is an ``id_gap`` dead letter;
* REST backfill is bounded: ``max_backfill_pages`` pages per attempt, every page must advance,
  ``backfill_attempts`` attempts with back-off (one that filled holes does not count, the next goes
  at once); at stop, gaps are backfilled while that makes progress, for up to ``stop_backfill_s``;
  a gap still open then is an ``id_gap`` dead letter (open_at_stop) and stays a hole of the ledger, so a restart tries it again;
* the library holds at most ``recv_queue_frames`` frames, then stops reading the socket: a backlog
  waits in the kernel and at the sender, not in this process's memory;
* ping/pong by the websockets library plus a read watchdog (``read_timeout_s``); reconnect with
  capped exponential back-off (at once after a long-lived connection);
* every emitted item goes to a queue of ``queue_max``; a trade that finds it full is not
  recorded as received, so it comes back as a gap (``queue_dropped`` counts it).

Items are ``("trade", row)``, ``("book", row)``, ``("deadletter", row)`` with canonical rows.
Resuming: ``seed(symbol, last_trade_id, last_update_id, ledger=...)`` with the ledger of what is
durable (its contiguous prefix and the ranges above it); ``ledger(symbol)`` is what was emitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException

from alpha_assets.market.backfill import backfill_tracker
from alpha_assets.market.continuity import BookTracker, Bounds, Emit, TrackerLog, TradeTracker
from alpha_assets.market.id_ledger import IdLedger
from alpha_assets.market.schema import dead_letter
from alpha_assets.market.streams import stream_names, stream_spec, url_streams
from alpha_assets.market.validation import Accepted, MessageValidator, Rejected, ValidationConfig

BINANCE_UM_WS = "wss://fstream.binance.com"
BINANCE_UM_REST = "https://fapi.binance.com"
_MESSAGE_TOO_BIG = 1009

Item = tuple[str, dict[str, Any]]


class WsClientConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., description="full stream URL, e.g. ws://127.0.0.1:8765/stream?streams=...")
    rest_url: str = Field("", description="REST base for trade backfill; empty: derived from url")
    read_timeout_s: float = Field(10.0, gt=0, le=600)
    ping_interval_s: float = Field(20.0, gt=0, le=600)
    ping_timeout_s: float = Field(20.0, gt=0, le=600)
    open_timeout_s: float = Field(5.0, gt=0, le=120)
    backoff_initial_s: float = Field(0.5, gt=0, le=60)
    backoff_max_s: float = Field(30.0, gt=0, le=600)
    backoff_factor: float = Field(2.0, ge=1, le=10)
    # A connection that streamed this long before it fell is re-opened at once (the exchange was
    # fine a moment ago); shorter-lived ones back off, so a flapping endpoint is not hammered.
    immediate_reconnect_after_s: float = Field(5.0, ge=0, le=3600)
    queue_max: int = Field(500_000, ge=1, le=50_000_000)
    gap_grace_s: float = Field(0.5, ge=0, le=60)
    backfill: bool = True
    backfill_attempts: int = Field(5, ge=1, le=100)
    max_backfill_pages: int = Field(20, ge=1, le=10_000, description="REST pages per backfill attempt")
    stop_backfill_s: float = Field(10.0, ge=0, le=3600,
                                   description="at stop: how long open gaps may still be backfilled before they are reported")
    max_trade_id_jump: int = Field(100_000, ge=1, le=10**12,
                                   description="a larger trade-id jump needs confirmation; confirmed, it is a resync")
    max_backfill_gap: int = Field(500_000, ge=0, le=10**9,
                                  description="a confirmed trade-id jump up to this size is backfilled; beyond, a resync")
    max_update_id_jump: int = Field(500_000, ge=1, le=10**15, description="the same for book update ids")
    max_open_gaps: int = Field(256, ge=1, le=100_000, description="open gaps per symbol (beyond: oldest given up)")
    max_ledger_fragments: int = Field(10_000, ge=1, le=10_000_000, description="id ranges held per symbol")
    jump_confirm_s: float = Field(5.0, gt=0, le=600, description="how long a jumped message waits for confirmation")
    ws_max_size_bytes: int = Field(16 << 20, ge=1024, le=1 << 31,
                                   description="frames above this close the connection (library limit)")
    recv_queue_frames: int = Field(4_096, ge=16, le=1_000_000,
                                   description="frames the WebSocket library holds; above, it stops reading the "
                                               "socket, so a backlog waits in the kernel and at the sender, not here")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)

    @model_validator(mode="after")
    def _check(self) -> WsClientConfig:
        if urlsplit(self.url).scheme not in ("ws", "wss"):
            raise ValueError(f"url must start with ws:// or wss://, got {self.url!r}")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be ≥ backoff_initial_s")
        if self.ws_max_size_bytes < self.validation.max_frame_bytes:
            raise ValueError("ws_max_size_bytes must be ≥ validation.max_frame_bytes")
        streams, _ = url_streams(self.url)
        bad = [s for s in streams if (spec := stream_spec(s)) is None or spec.kind not in ("trade", "book")]
        if bad:
            raise ValueError(f"url: streams {bad} are not supported (<sym>@aggTrade, <sym>@trade, <sym>@depth<5|10|20>)")
        return self

    def backfill_base(self) -> str:
        if self.rest_url:
            return self.rest_url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.hostname in ("fstream.binance.com",):
            return BINANCE_UM_REST
        return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


def combined_stream_url(base: str, symbols: list[str], depth: str = "depth5@100ms") -> str:
    names = [f"{s.lower()}@{kind}" for s in symbols for kind in ("aggTrade", depth)]
    return f"{base.rstrip('/')}/stream?streams={'/'.join(names)}"


@dataclass
class ClientCounters:
    messages: int = 0
    trades: int = 0
    books: int = 0
    acks: int = 0
    connects: int = 0
    reconnect_count: int = 0
    connect_failures: int = 0
    watchdog_timeouts: int = 0
    oversize_disconnects: int = 0
    queue_dropped: int = 0
    deadletter: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    trade_gaps: int = 0
    gap_trades_missing: int = 0
    gap_trades_filled: int = 0
    gap_trades_unfilled: int = 0
    gap_overflow: int = 0
    id_jumps: int = 0
    resyncs: int = 0
    book_gaps: int = 0
    backfill_errors: int = 0
    backfill_pages: int = 0
    backfill_unserved: int = 0
    tail_probes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class MarketWsClient:
    def __init__(self, cfg: WsClientConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock  # receive time is recorded as data; it is never used to compute
        self.counters = ClientCounters()
        self.deadletter_reasons: Counter[str] = Counter()
        self._log = TrackerLog(self.counters)
        self._items: deque[Item] = deque()
        streams, is_combined = url_streams(cfg.url)
        self.validator = MessageValidator(streams or None, cfg.validation, combined=is_combined)
        self._trades: dict[str, TradeTracker] = {}
        self._books: dict[str, BookTracker] = {}
        gap: dict[str, Any] = dict(max_open_gaps=cfg.max_open_gaps, max_fragments=cfg.max_ledger_fragments,
                   gap_grace_s=cfg.gap_grace_s, backfill_attempts=cfg.backfill_attempts,
                   jump_confirm_s=cfg.jump_confirm_s, backfill_skew_ms=cfg.validation.max_trade_skew_ms)
        self._trade_bounds = Bounds(max_id_jump=cfg.max_trade_id_jump, max_backfill_gap=cfg.max_backfill_gap, **gap)
        self._book_bounds = Bounds(max_id_jump=cfg.max_update_id_jump, **gap)
        self._ws: Any = None

    @property
    def gap_reports(self) -> list[dict[str, Any]]:
        return self._log.reports

    # ------------------------------------------------------------- output
    def drain(self, max_items: int | None = None) -> list[Item]:
        n = len(self._items) if max_items is None else min(max_items, len(self._items))
        return [self._items.popleft() for _ in range(n)]

    def pending(self) -> int:
        return len(self._items)

    def _emit(self, kind: str, row: dict[str, Any]) -> bool:
        if len(self._items) >= self.cfg.queue_max:
            self.counters.queue_dropped += 1
            return False
        if kind == "deadletter":
            self.deadletter_reasons[row["reason"]] += 1
        self._items.append((kind, row))
        return True

    def _dead(self, row: dict[str, Any]) -> None:
        self.counters.deadletter += 1
        self._emit("deadletter", row)

    # ------------------------------------------------------------- message handling
    def handle(self, raw: str | bytes, recv_ms: int | None = None) -> None:
        """Process one raw frame (public so it can be driven without a socket)."""
        recv_ms = int(self.clock() * 1000) if recv_ms is None else recv_ms
        self.counters.messages += 1
        out = self.validator.validate(raw, recv_ms)
        if isinstance(out, Rejected):
            self._dead(out.deadletter)
        elif isinstance(out, Accepted):
            now = time.monotonic()
            sym = out.row["symbol"]
            if out.kind == "trade":
                self._trade(sym, out.spec.name).on_trade(out.row, raw, now)
            else:
                self._book(sym, out.spec.name).on_book(out.row, raw, now)
        else:
            self.counters.acks += 1

    def _trade(self, symbol: str, stream: str | None = None) -> TradeTracker:
        t = self._trades.get(symbol)
        if t is None:
            emit: Emit = self._emit
            t = self._trades[symbol] = TradeTracker(symbol, stream or stream_names(symbol)[0],
                                                    self._trade_bounds, self._log, emit)
        return t

    def _book(self, symbol: str, stream: str | None = None) -> BookTracker:
        b = self._books.get(symbol)
        if b is None:
            b = self._books[symbol] = BookTracker(symbol, stream or stream_names(symbol)[1],
                                                  self._book_bounds, self._log, self._emit)
        return b

    # ------------------------------------------------------------- resume / state
    def seed(self, symbol: str, last_trade_id: int | None, last_update_id: int | None = None, *,
             ledger: IdLedger | None = None) -> None:
        """Resume after a restart. `ledger`: the trade ids known durable (contiguous prefix plus
        ranges above it); its holes are backfilled at once. Without it, `last_trade_id` is taken
        as the contiguous prefix. The first live trade then reveals (and backfills) what was missed."""
        symbol = symbol.upper()
        if ledger is None and last_trade_id is not None:
            ledger = IdLedger(last_trade_id)
        if ledger is not None:
            self._trade(symbol).seed(ledger, time.monotonic())
        if last_update_id is not None:
            self._book(symbol).last = last_update_id

    def ledger(self, symbol: str) -> IdLedger:
        """A copy of the ids emitted (or given up and reported) for `symbol`."""
        t = self._trades.get(symbol.upper())
        return t.ledger.copy() if t is not None else IdLedger()

    def last_ids(self) -> dict[str, dict[str, int | None]]:
        syms = set(self._trades) | set(self._books)
        return {s: {"last_trade_id": self._trades[s].ledger.head if s in self._trades else None,
                    "contiguous_trade_id": self._trades[s].ledger.prefix if s in self._trades else None,
                    "last_update_id": self._books[s].last if s in self._books else None} for s in syms}

    def bounds_in_use(self) -> dict[str, int]:
        """How full the bounded structures are (largest per symbol): open gaps, ledger ranges,
        held messages, gap reports, queued items."""
        trades = list(self._trades.values())
        return {"gaps": max((len(t.gaps) for t in trades), default=0),
                "fragments": max((t.ledger.fragments() for t in trades), default=0),
                "held": sum(t.held is not None for t in trades) + sum(b.held is not None for b in self._books.values()),
                "gap_reports": len(self.gap_reports), "pending": self.pending()}

    def open_gaps(self, symbol: str | None = None) -> int:
        """Trade ids still missing in open gaps (+1 for a held jump) — of one symbol or all."""
        if symbol is not None:
            t = self._trades.get(symbol)
            return t.open_ids() if t is not None else 0
        return sum(t.open_ids() for t in self._trades.values())

    # ------------------------------------------------------------- backfill
    async def backfill_due(self, http: httpx.AsyncClient, force: bool = False) -> None:
        now = time.monotonic()
        for t in list(self._trades.values()):
            await backfill_tracker(self, http, t, now, force)
        for b in self._books.values():
            b.expire(now)

    async def finish_backfill(self, http: httpx.AsyncClient) -> None:
        """At stop: attempts on every open gap while they fill holes (a big gap takes many page-bounded
        attempts), until none is left, a round fills nothing or ``stop_backfill_s`` is spent. What is
        left is reported by ``close`` as open at stop (a restart tries it again), not given up."""
        deadline = time.monotonic() + self.cfg.stop_backfill_s
        while True:
            filled = self.counters.gap_trades_filled
            await self.backfill_due(http, force=True)
            if (not any(t.gaps for t in self._trades.values()) or self.counters.gap_trades_filled == filled
                    or time.monotonic() >= deadline):
                return

    def close(self) -> None:
        """End of the run: held messages and gaps still open become dead letters."""
        for t in self._trades.values():
            t.close()
        for b in self._books.values():
            b.expire(time.monotonic(), final=True)

    # ------------------------------------------------------------- connection loop
    async def run(self, stop: asyncio.Event) -> None:
        """Connect, read, reconnect until ``stop`` is set; backfills gaps on the side."""
        attempt = 0
        async with httpx.AsyncClient(timeout=5.0) as http:
            backfiller = asyncio.create_task(self._backfill_loop(http, stop))
            try:
                while not stop.is_set():
                    opened = time.monotonic()
                    got_data, oversize = await self._session(stop)
                    if stop.is_set():
                        break
                    if oversize or (got_data and time.monotonic() - opened >= self.cfg.immediate_reconnect_after_s):
                        attempt, delay = 0, 0.0
                    else:
                        attempt = 0 if got_data else attempt + 1
                        delay = min(self.cfg.backoff_max_s,
                                    self.cfg.backoff_initial_s * self.cfg.backoff_factor ** attempt)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
            finally:
                backfiller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await backfiller
                await self.finish_backfill(http)
                self.close()

    async def _backfill_loop(self, http: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(max(0.05, self.cfg.gap_grace_s / 2))
            await self.backfill_due(http)

    async def _watch(self, ws: Any, stop: asyncio.Event) -> None:
        """Close the connection at stop, or after ``read_timeout_s`` without a frame (the read
        watchdog). It looks every quarter of that and counts looks, not time; a look that comes
        over max(an eighth, 0.25 s) late means this process was held up (frames may be waiting):
        the count restarts. Before it fires, the reader gets its turns once more."""
        step = self.cfg.read_timeout_s / 4
        seen, quiet = self.counters.messages, 0
        while not stop.is_set():
            t0 = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), step)
            if quiet >= 3:
                for _ in range(3):
                    await asyncio.sleep(0)
            if self.counters.messages != seen or time.monotonic() - t0 > step + max(step / 2, 0.25):
                seen, quiet = self.counters.messages, 0
                continue
            quiet += 1
            if quiet >= 4 and not stop.is_set():
                self.counters.watchdog_timeouts += 1  # silent stall: reconnect
                break
        await ws.close()

    async def _session(self, stop: asyncio.Event) -> tuple[bool, bool]:
        """One connection: (delivered at least one message, closed for an oversize frame).

        Frames are read one after the other with no task and no timer per frame: a frame the
        library holds already comes back without a loop turn, so whatever arrived together is
        handled together (and published in one round trip by whoever waits on ``handle``'s output).
        The read watchdog (``_watch``) reconnects after ``read_timeout_s`` of silence, never while
        a backlog is being handled."""
        got = False
        watchdog: asyncio.Task[None] | None = None
        try:
            async with connect(self.cfg.url, open_timeout=self.cfg.open_timeout_s,
                               ping_interval=self.cfg.ping_interval_s, ping_timeout=self.cfg.ping_timeout_s,
                               max_size=self.cfg.ws_max_size_bytes, max_queue=self.cfg.recv_queue_frames) as ws:
                self._ws = ws
                self.counters.connects += 1
                if self.counters.connects > 1:
                    self.counters.reconnect_count += 1
                    for t in self._trades.values():
                        t.arm_tail_probe(time.monotonic())
                watchdog = asyncio.create_task(self._watch(ws, stop))
                try:
                    while not stop.is_set():
                        self.handle(await ws.recv(decode=False))
                        got = True
                finally:
                    watchdog.cancel()
                    self._ws = None
        except ConnectionClosed as exc:
            stalled = watchdog is not None and watchdog.done() and not watchdog.cancelled()
            if stop.is_set() or stalled:  # closed by us: the run's end, or a silent stall
                return got, False
            if exc.sent is not None and exc.sent.code == _MESSAGE_TOO_BIG:
                self.counters.oversize_disconnects += 1
                self._dead(dead_letter("ws", "frame_too_large", None, None, None,
                                       {"closed": exc.sent.reason[:200], "limit": self.cfg.ws_max_size_bytes},
                                       recv_time_ms=int(self.clock() * 1000)))
                return got, True
            if not got:
                self.counters.connect_failures += 1
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException):
            if not got:
                self.counters.connect_failures += 1
        return got, False

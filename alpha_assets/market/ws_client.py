"""Client of the Binance USD-M futures combined stream (the real endpoint or the local simulator).

* ping/pong by the websockets library (``ping_interval_s``/``ping_timeout_s``) plus a read
  watchdog: no message for ``read_timeout_s`` means a silent stall → reconnect;
* reconnect with capped exponential back-off (reset after a connection that delivered data);
* trade ids (``a``) per symbol: a jump opens a gap; ids that arrive late (out of order) close it;
  after ``gap_grace_s`` the rest is fetched from REST ``/fapi/v1/aggTrades?fromId=`` (the real
  exchange and the simulator both serve it); what cannot be fetched is reported as an
  ``id_gap`` dead letter. Duplicates are dropped into the dead letters with reason
  ``duplicate``. Book update ids: ``pu`` ≠ previous ``u`` is counted and reported as a gap;
* every emitted item goes to a bounded queue; overflow is counted in ``queue_dropped``.

Items are ``("trade", row)``, ``("book", row)``, ``("deadletter", row)`` with canonical rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from alpha_assets.market.binance import (
    ParseError,
    dead_letter,
    parse_message,
    parse_partial_depth,
    parse_trade,
    unwrap,
)

BINANCE_UM_WS = "wss://fstream.binance.com"
BINANCE_UM_REST = "https://fapi.binance.com"

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

    @model_validator(mode="after")
    def _check(self) -> WsClientConfig:
        if urlsplit(self.url).scheme not in ("ws", "wss"):
            raise ValueError(f"url must start with ws:// or wss://, got {self.url!r}")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be ≥ backoff_initial_s")
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
    connects: int = 0
    reconnect_count: int = 0
    connect_failures: int = 0
    watchdog_timeouts: int = 0
    queue_dropped: int = 0
    deadletter: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    trade_gaps: int = 0
    gap_trades_missing: int = 0
    gap_trades_filled: int = 0
    gap_trades_unfilled: int = 0
    book_gaps: int = 0
    backfill_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Gap:
    symbol: str
    missing: set[int]
    first: int
    last: int
    due: float  # monotonic time when backfill starts
    attempts: int = 0


@dataclass
class _SymbolState:
    last_trade_id: int | None = None
    last_update_id: int | None = None
    gaps: list[_Gap] = field(default_factory=list)


class MarketWsClient:
    def __init__(self, cfg: WsClientConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock  # receive time is recorded as data; it is never used to compute
        self.counters = ClientCounters()
        self.gap_reports: list[dict[str, Any]] = []
        self._items: deque[Item] = deque()
        self._state: dict[str, _SymbolState] = {}
        self._ws: Any = None

    # ------------------------------------------------------------- output
    def drain(self, max_items: int | None = None) -> list[Item]:
        n = len(self._items) if max_items is None else min(max_items, len(self._items))
        return [self._items.popleft() for _ in range(n)]

    def pending(self) -> int:
        return len(self._items)

    def _emit(self, kind: str, row: dict[str, Any]) -> None:
        if len(self._items) >= self.cfg.queue_max:
            self.counters.queue_dropped += 1
            return
        self._items.append((kind, row))

    def _dead(self, reason: str, payload: Any, symbol: str | None = None, t: int | None = None,
              key: str | None = None, source: str = "ws") -> None:
        self.counters.deadletter += 1
        self._emit("deadletter", dead_letter(source, reason, symbol, t, key, payload))

    # ------------------------------------------------------------- message handling
    def handle(self, raw: str | bytes, recv_ms: int | None = None) -> None:
        """Process one raw frame (public so it can be driven without a socket)."""
        recv_ms = int(self.clock() * 1000) if recv_ms is None else recv_ms
        self.counters.messages += 1
        try:
            parsed = parse_message(raw, recv_ms)
            if parsed.kind == "trade":
                self._on_trade(parsed.value, raw)
            elif parsed.kind == "depth":
                _, data = unwrap(raw)
                self._on_book(parse_partial_depth(data, recv_ms), raw)
            # acks, snapshots and tickers are not part of the landing contract
        except ParseError as exc:
            self._dead(exc.reason, raw)

    def _sym(self, symbol: str) -> _SymbolState:
        st = self._state.get(symbol)
        if st is None:
            st = self._state[symbol] = _SymbolState()
        return st

    def _on_trade(self, row: dict[str, Any], raw: Any) -> None:
        st = self._sym(row["symbol"])
        tid = row["agg_trade_id"]
        last = st.last_trade_id
        if last is None or tid == last + 1:
            st.last_trade_id = tid
        elif tid > last + 1:
            missing = set(range(last + 1, tid))
            self.counters.trade_gaps += 1
            self.counters.gap_trades_missing += len(missing)
            st.gaps.append(_Gap(row["symbol"], missing, last + 1, tid - 1, time.monotonic() + self.cfg.gap_grace_s))
            st.last_trade_id = tid
        elif self._fill(st, tid):
            self.counters.out_of_order += 1
        else:
            self.counters.duplicates += 1
            self._dead("duplicate", raw, row["symbol"], row["event_time_ms"], str(tid), source="trades")
            return
        self.counters.trades += 1
        self._emit("trade", row)

    def _fill(self, st: _SymbolState, tid: int) -> bool:
        for gap in st.gaps:
            if tid in gap.missing:
                gap.missing.discard(tid)
                self.counters.gap_trades_filled += 1
                if not gap.missing:
                    st.gaps.remove(gap)
                    self.gap_reports.append({"symbol": gap.symbol, "from_id": gap.first, "to_id": gap.last,
                                             "filled": True, "attempts": gap.attempts})
                return True
        return False

    def _on_book(self, row: dict[str, Any], raw: Any) -> None:
        st = self._sym(row["symbol"])
        u, pu = row["last_update_id"], row["prev_last_update_id"]
        if st.last_update_id is not None:
            if u <= st.last_update_id:
                self._dead("duplicate", raw, row["symbol"], row["event_time_ms"], str(u), source="book")
                return
            if pu is not None and pu != st.last_update_id:
                # A 5-level snapshot is self-contained: the gap is reported, the row is kept.
                self.counters.book_gaps += 1
                self.gap_reports.append({"symbol": row["symbol"], "kind": "book", "from_id": st.last_update_id,
                                         "to_id": pu, "filled": False})
        st.last_update_id = u
        self.counters.books += 1
        self._emit("book", row)

    # ------------------------------------------------------------- backfill
    async def backfill_due(self, http: httpx.AsyncClient, force: bool = False) -> None:
        now = time.monotonic()
        for st in self._state.values():
            for gap in list(st.gaps):
                if force or gap.due <= now:
                    await self._backfill(http, st, gap)

    async def _backfill(self, http: httpx.AsyncClient, st: _SymbolState, gap: _Gap) -> None:
        gap.attempts += 1
        if self.cfg.backfill:
            try:
                while gap.missing:
                    lo = min(gap.missing)
                    limit = min(1000, max(gap.missing) - lo + 1)
                    resp = await http.get(f"{self.cfg.backfill_base()}/fapi/v1/aggTrades",
                                          params={"symbol": gap.symbol, "fromId": lo, "limit": limit})
                    resp.raise_for_status()
                    got = resp.json()
                    if not got:
                        break
                    recv_ms = int(self.clock() * 1000)
                    for item in got:
                        data = {"e": "aggTrade", "s": gap.symbol, "E": item.get("E", item.get("T")), **item}
                        try:
                            row = parse_trade(data, recv_ms)
                        except ParseError as exc:
                            self._dead(exc.reason, data, gap.symbol, None, str(item.get("a")), source="trades")
                            continue
                        if row["agg_trade_id"] in gap.missing:
                            gap.missing.discard(row["agg_trade_id"])
                            self.counters.gap_trades_filled += 1
                            self.counters.trades += 1
                            self._emit("trade", row)
                    if max(int(i["a"]) for i in got) < lo:
                        break
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                self.counters.backfill_errors += 1
        if not gap.missing:
            st.gaps.remove(gap)
            self.gap_reports.append({"symbol": gap.symbol, "from_id": gap.first, "to_id": gap.last,
                                     "filled": True, "attempts": gap.attempts})
        elif gap.attempts >= self.cfg.backfill_attempts or not self.cfg.backfill:
            st.gaps.remove(gap)
            lost = sorted(gap.missing)
            self.counters.gap_trades_unfilled += len(lost)
            self.gap_reports.append({"symbol": gap.symbol, "from_id": gap.first, "to_id": gap.last,
                                     "filled": False, "unfilled": len(lost)})
            self._dead("id_gap", {"missing_from": lost[0], "missing_to": lost[-1], "count": len(lost)},
                       gap.symbol, None, f"{lost[0]}-{lost[-1]}", source="trades")
        else:
            gap.due = time.monotonic() + self.cfg.gap_grace_s * (2 ** gap.attempts)

    def seed(self, symbol: str, last_trade_id: int | None, last_update_id: int | None = None) -> None:
        """Resume after a restart: the first trade then reveals (and backfills) what was missed."""
        st = self._sym(symbol.upper())
        st.last_trade_id = last_trade_id
        st.last_update_id = last_update_id

    def last_ids(self) -> dict[str, dict[str, int | None]]:
        return {s: {"last_trade_id": st.last_trade_id, "last_update_id": st.last_update_id}
                for s, st in self._state.items()}

    def open_gaps(self, symbol: str | None = None) -> int:
        if symbol is not None:
            st = self._state.get(symbol)
            return sum(len(g.missing) for g in st.gaps) if st else 0
        return sum(len(g.missing) for st in self._state.values() for g in st.gaps)

    # ------------------------------------------------------------- connection loop
    async def run(self, stop: asyncio.Event) -> None:
        """Connect, read, reconnect until ``stop`` is set; backfills gaps on the side."""
        attempt = 0
        async with httpx.AsyncClient(timeout=5.0) as http:
            backfiller = asyncio.create_task(self._backfill_loop(http, stop))
            try:
                while not stop.is_set():
                    opened = time.monotonic()
                    got_data = await self._session(stop)
                    if stop.is_set():
                        break
                    if got_data and time.monotonic() - opened >= self.cfg.immediate_reconnect_after_s:
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
                await self.backfill_due(http, force=True)

    async def _backfill_loop(self, http: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(max(0.05, self.cfg.gap_grace_s / 2))
            await self.backfill_due(http)

    async def _session(self, stop: asyncio.Event) -> bool:
        """One connection; True when it delivered at least one message."""
        got = False
        try:
            async with connect(self.cfg.url, open_timeout=self.cfg.open_timeout_s,
                               ping_interval=self.cfg.ping_interval_s, ping_timeout=self.cfg.ping_timeout_s,
                               max_size=2**24, max_queue=None) as ws:
                self._ws = ws
                self.counters.connects += 1
                if self.counters.connects > 1:
                    self.counters.reconnect_count += 1
                stopper = asyncio.create_task(stop.wait())
                try:
                    while not stop.is_set():
                        recv = asyncio.create_task(ws.recv())
                        done, _ = await asyncio.wait({recv, stopper}, timeout=self.cfg.read_timeout_s,
                                                     return_when=asyncio.FIRST_COMPLETED)
                        if recv not in done:
                            recv.cancel()
                            with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                                await recv
                            if not stop.is_set():
                                self.counters.watchdog_timeouts += 1  # silent stall: reconnect
                            break
                        self.handle(recv.result())
                        got = True
                finally:
                    stopper.cancel()
                    self._ws = None
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException):
            if not got:
                self.counters.connect_failures += 1
        return got

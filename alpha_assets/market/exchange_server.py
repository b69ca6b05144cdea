"""An exchange simulator on 127.0.0.1 that speaks the Binance USD-M futures WebSocket protocol.

* ``ws://host:port/stream?streams=btcusdt@aggTrade/btcusdt@depth5@100ms/...`` — combined
  stream, envelopes ``{"stream": ..., "data": ...}``; ``/ws/<stream>`` raw streams too.
* ``GET /fapi/v1/aggTrades?symbol=BTCUSDT&fromId=..&limit=..`` — REST backfill of trades the
  market produced (also while no client was connected), as the real exchange offers.

The market comes from a source with ``advance_to(t_ms) -> (trades, book)``: the seeded
``SimulatorStream`` (default) or ``ReplaySource`` over a real capture. Event times are the
server's clock (the server stands for the exchange, outside our computation): every
``tick_ms`` it advances the source to now and sends what happened.

Fault knobs (thread-safe, callable while serving): ``drop_connections()``, ``stall(seconds)``,
``burst(speed, seconds)`` (the market runs ``speed``× for a while: market_clock.py),
``send_malformed(n, kinds)``, ``reorder_next_trades(n)``, and the ``malformed`` plan (a rate per
message over the catalogue of malformed.py; ``injected`` is the record of what was sent, to be
compared with the dead letters: injection.match_deadletters). ``sent_trade_ids[symbol]`` logs
every trade id sent on any connection, and ``produced_trade_ids[symbol]`` every id the market
produced, so tests can do loss accounting.
``send_times`` records, per symbol and trade id, when the trade left the exchange (ns since the
epoch, taken as the frame is handed to the WebSocket; a trade served only by the REST backfill is
stamped when served): data for the live path's latency figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from alpha_assets.market.binance import combined, dumps, encode_agg_trade, encode_depth5
from alpha_assets.market.exchange_conn import Conn as _Conn
from alpha_assets.market.exchange_conn import ServerStats as ServerStats
from alpha_assets.market.exchange_rest import BACKFILL_LIMIT_MAX as BACKFILL_LIMIT_MAX
from alpha_assets.market.exchange_rest import agg_trades, json_response
from alpha_assets.market.injection import Injector, MalformedPlan
from alpha_assets.market.market_clock import MarketClock
from alpha_assets.market.send_times import SendTimes
from alpha_assets.market.sources import MarketSource as MarketSource
from alpha_assets.market.sources import ReplaySource as ReplaySource
from alpha_assets.market.sources import replay_sources as replay_sources
from alpha_assets.market.sources import simulator_sources as simulator_sources
from alpha_assets.market.streams import stream_names

_HISTORY_MAX = 2_000_000  # trades kept per symbol for REST backfill


class ExchangeServer:
    """Run in a background thread (``start``/``stop``) or ``await serve_forever()``."""

    def __init__(
        self,
        sources: dict[str, MarketSource],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_ms: int = 100,
        clock: Callable[[], float] = time.time,
        conn_queue_max: int = 50_000,
        malformed: MalformedPlan | None = None,
    ) -> None:
        if not sources:
            raise ValueError("at least one symbol source is required")
        if not 1 <= tick_ms <= 10_000:
            raise ValueError(f"tick_ms must be in [1, 10000], got {tick_ms}")
        self.sources = {s.upper(): src for s, src in sources.items()}
        self.host, self.port, self.tick_ms, self.clock = host, port, tick_ms, clock
        self.conn_queue_max = conn_queue_max
        self.stats = ServerStats()
        self.sent_trade_ids: dict[str, list[int]] = defaultdict(list)
        self.produced_trade_ids: dict[str, list[int]] = defaultdict(list)
        self.send_times: dict[str, SendTimes] = defaultdict(SendTimes)
        self._history: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self._conns: dict[int, _Conn] = {}
        self._next_conn = 0
        self._lock = threading.Lock()
        self._stall_until = 0.0
        self.injector = Injector(malformed or MalformedPlan(), list(self.sources))
        self._reorder_pending = 0
        self._drop_pending = False
        self.market_clock = MarketClock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------- addresses
    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stream_url(self, symbols: list[str] | None = None) -> str:
        names = [n for s in (symbols or list(self.sources)) for n in stream_names(s)]
        return f"{self.ws_url}/stream?streams={'/'.join(names)}"

    def feed_log(self) -> dict[str, list[tuple[int, int]]]:
        """(agg_trade_id, event_time_ms) of every trade the market produced, per symbol (-1: no longer kept)."""
        out: dict[str, list[tuple[int, int]]] = {}
        for sym, ids in self.produced_trade_ids.items():
            hist = self._history.get(sym, {})
            out[sym] = [(int(t), int(hist[t]["E"]) if t in hist else -1) for t in ids]
        return out

    # ------------------------------------------------------------- fault knobs
    def drop_connections(self) -> None:
        """Abort every open connection (no close frame), as a network cut would."""
        with self._lock:
            self._drop_pending = True

    def stall(self, seconds: float) -> None:
        """Stop sending for ``seconds`` (the market goes on; what it produced is sent after)."""
        with self._lock:
            self._stall_until = max(self._stall_until, time.monotonic() + seconds)

    def burst(self, speed: float, seconds: float) -> None:
        """The market runs ``speed``× as fast for ``seconds`` (trades and books as often; ids as ever)."""
        with self._lock:
            self.market_clock.burst(self._now_ms(), speed, seconds)

    def end_burst(self) -> None:  # the market runs at 1× from now
        with self._lock:
            self.market_clock.end_burst(self._now_ms())

    def resume(self) -> None:
        """End a stall now (what the market produced meanwhile is sent on the next tick)."""
        with self._lock:
            self._stall_until = 0.0

    def send_malformed(self, n: int = 1, kinds: list[str] | None = None) -> None:
        """Corrupt the next ``n`` market messages, one kind each (in turn from ``kinds``)."""
        with self._lock:
            self.injector.force(n, kinds)

    def pause_malformed(self) -> None:
        """No more malformed messages (the record of those sent is kept)."""
        with self._lock:
            self.injector.set_plan(MalformedPlan())

    @property
    def injected(self) -> list[dict[str, Any]]:
        """The record of every malformed message sent (malformed.py kinds)."""
        return self.injector.record

    def reorder_next_trades(self, n: int = 1) -> None:
        """Swap the next ``n`` pairs of adjacent trade messages."""
        with self._lock:
            self._reorder_pending += n

    def connection_count(self) -> int:
        return len(self._conns)

    # ------------------------------------------------------------- HTTP (REST backfill)
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path.startswith("/stream") or parts.path.startswith("/ws"):
            return None  # a WebSocket handshake
        if parts.path == "/fapi/v1/aggTrades":
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            return self._agg_trades(q)
        if parts.path == "/health":
            return self._json(HTTPStatus.OK, {"ok": True, "connections": len(self._conns)})
        return self._json(HTTPStatus.NOT_FOUND, {"code": -1, "msg": f"no route {parts.path}"})

    def _agg_trades(self, q: dict[str, str]) -> Response:
        self.stats.backfill_requests += 1
        return agg_trades(q, self.sources, self._history, self.send_times)

    _json = staticmethod(json_response)

    # ------------------------------------------------------------- WebSocket
    def _streams_of(self, path: str) -> set[str]:
        parts = urlsplit(path)
        if parts.path.startswith("/ws/"):
            return {parts.path[len("/ws/"):]}
        raw = parse_qs(parts.query).get("streams", [""])[0]
        return {s for s in raw.split("/") if s}

    async def _handler(self, ws: ServerConnection) -> None:
        with self._lock:
            self._next_conn += 1
            path = ws.request.path if ws.request is not None else "/"  # the handshake always has one
            conn = _Conn(ws, self._streams_of(path), asyncio.Queue(self.conn_queue_max), self._next_conn)
            self._conns[conn.id] = conn
            self.injector.on_connect()
        self.stats.connections += 1
        sender = asyncio.create_task(self._sender(conn))
        try:
            async for msg in ws:  # SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS
                self._control(conn, msg)
        except Exception:  # a client vanishing is normal; the sender notices too
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            self._conns.pop(conn.id, None)

    def _control(self, conn: _Conn, msg: str | bytes) -> None:
        try:
            req = orjson.loads(msg)
            method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
        except Exception:
            return
        if method == "SUBSCRIBE":
            conn.streams |= set(params)
            result: Any = None
        elif method == "UNSUBSCRIBE":
            conn.streams -= set(params)
            result = None
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(conn.streams)
        else:
            return
        conn.queue.put_nowait((orjson.dumps({"result": result, "id": rid}), None))

    async def _sender(self, conn: _Conn) -> None:
        while True:
            data, trade = await conn.queue.get()
            if trade is not None:  # stamped as it is handed to the socket: a receiver never sees it earlier
                self.send_times[trade[0]].set(trade[1], time.time_ns())
            await conn.ws.send(data, text=True)  # bytes as a text frame: also invalid UTF-8, as sent

    # ------------------------------------------------------------- the market clock
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _produce(self) -> list[tuple[str, str, dict[str, Any], int | None]]:
        """Advance every source to now: [(symbol, stream, payload, trade_id)] in event order."""
        with self._lock:  # a burst moves the market ahead of the clock; its times are the clock's
            clock = copy.deepcopy(self.market_clock) if self.market_clock.warped() else None
        now = self._now_ms()
        out: list[tuple[int, int, str, str, dict[str, Any], int | None]] = []
        for symbol, src in self.sources.items():
            trades, book = src.advance_to(clock.market(now) if clock else now)
            t_stream, b_stream = stream_names(symbol)
            hist = self._history[symbol]
            for row in trades.to_dicts():
                row["symbol"] = symbol
                if clock:
                    clock.restamp(row, "event_time_ms", "trade_time_ms")
                payload = encode_agg_trade(row)
                tid = payload["a"]
                hist[tid] = payload
                self.produced_trade_ids[symbol].append(tid)
                out.append((payload["E"], 1, symbol, t_stream, payload, tid))
            for row in book.to_dicts():
                row["symbol"] = symbol
                if clock:
                    clock.restamp(row, "event_time_ms")
                out.append((int(row["event_time_ms"]), 0, symbol, b_stream, encode_depth5(row), None))
            if len(hist) > _HISTORY_MAX:
                for k in sorted(hist)[: len(hist) - _HISTORY_MAX]:
                    del hist[k]
        out.sort(key=lambda r: (r[0], r[1]))
        return [(sym, stream, payload, tid) for _, _, sym, stream, payload, tid in out]

    async def _clock_loop(self) -> None:
        backlog: list[tuple[str, str, dict[str, Any], int | None]] = []
        period = self.tick_ms / 1000
        next_t = time.monotonic()
        while True:
            next_t += period
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
            try:
                backlog.extend(self._produce())
            except Exception as exc:  # a broken source must not kill the exchange
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with self._lock:
                drop, self._drop_pending = self._drop_pending, False
                stalled = time.monotonic() < self._stall_until
            if drop:
                await self._drop_all()
            if stalled:
                self.stats.stalled_ms += self.tick_ms
                continue
            self._broadcast(backlog)
            backlog = []

    async def _drop_all(self) -> None:
        for conn in list(self._conns.values()):
            self.stats.drops += 1
            conn.ws.transport.abort()  # abrupt: no close handshake, like a cut cable
            self._conns.pop(conn.id, None)

    def _broadcast(self, items: list[tuple[str, str, dict[str, Any], int | None]]) -> None:
        with self._lock:
            n_swap = self._reorder_pending
        if n_swap:
            idx = [i for i, it in enumerate(items) if it[3] is not None]
            done = 0
            for k in range(0, len(idx) - 1, 2):
                if done == n_swap:
                    break
                a, b = idx[k], idx[k + 1]
                items[a], items[b] = items[b], items[a]
                done += 1
            with self._lock:
                self._reorder_pending -= done
            self.stats.reordered += done
        conns = list(self._conns.values())
        now = self._now_ms()
        for symbol, stream, payload, tid in items:
            original = dumps(combined(stream, payload))
            frames = [original]
            real = True
            if any(stream in c.streams for c in conns):
                with self._lock:
                    before = len(self.injector.record)
                    frames, real = self.injector.frames(stream, symbol, payload, frames[0], now)
                    self.stats.malformed_sent += len(self.injector.record) - before
            sent = False
            key = (symbol, tid) if tid is not None and real else None
            for data in frames:
                for conn in conns:
                    if stream in conn.streams:
                        sent = self._enqueue(conn, data, key if data is original else None) or sent
            if sent and real and tid is not None:
                self.sent_trade_ids[symbol].append(tid)

    def _enqueue(self, conn: _Conn, data: bytes, trade: tuple[str, int] | None) -> bool:
        try:
            conn.queue.put_nowait((data, trade))
        except asyncio.QueueFull:  # a client that cannot keep up loses data, as on the real exchange
            self.stats.queue_overflow += 1
            return False
        self.stats.messages_sent += 1
        return True

    # ------------------------------------------------------------- lifecycle
    async def serve_forever(self, stop: asyncio.Event | None = None) -> None:
        self._stopped = stop or asyncio.Event()
        # no permessage-deflate on loopback: compressing every frame costs both ends CPU for nothing
        async with serve(self._handler, self.host, self.port, process_request=self._process_request,
                         ping_interval=20, ping_timeout=20, max_queue=64, compression=None) as server:
            self._server = server
            self.port = next(iter(server.sockets)).getsockname()[1]
            # Start the market at the moment we can serve it.
            for src in self.sources.values():
                if hasattr(src, "position_ms") and getattr(src, "position_ms", 0) == 0:
                    src.position_ms = self._now_ms()
            clock = asyncio.create_task(self._clock_loop())
            self._ready.set()
            await self._stopped.wait()
            clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock

    def start(self, timeout_s: float = 30.0) -> ExchangeServer:
        """Serve in a daemon thread; returns once the port is bound."""
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.serve_forever())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="exchange-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"exchange server did not start within {timeout_s}s: {self.stats.errors}")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return  # not started, or stopped already
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


if __name__ == "__main__":  # python -m alpha_assets.market.exchange_server (the CLI lives in exchange_cli)
    from alpha_assets.market.exchange_cli import main

    main()

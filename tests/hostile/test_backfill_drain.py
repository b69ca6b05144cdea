"""What the burst of bench/live.py showed: the loopback exchange's REST side, backfill at stop, the
exchange burst knob, and the drain's accounting that must see a loss (real exchange server, real Redis)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import polars as pl

from alpha_assets.live import bus
from alpha_assets.live.soak_drain import feed_trades_missing, missing_on_bus
from alpha_assets.live.workers.harvest_state import SymbolState
from alpha_assets.market.binance import combined, dumps
from alpha_assets.market.exchange_server import ExchangeServer
from alpha_assets.market.id_ledger import IdLedger, gap_range
from alpha_assets.market.market_clock import MarketClock
from alpha_assets.market.rate_source import RateSource
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig
from tests.hostile.sut import wait_until


def rate_server(per_s: float) -> ExchangeServer:
    return ExchangeServer({"BTCUSDT": RateSource("BTCUSDT", int(time.time() * 1000), per_s)}, tick_ms=10).start()


def test_rest_pages_close_their_connection_so_a_pooled_client_never_reuses_a_dead_one() -> None:
    srv = rate_server(2_000)
    try:
        assert wait_until(lambda: len(srv.produced_trade_ids["BTCUSDT"]) > 1_000, 10)
        first = srv.produced_trade_ids["BTCUSDT"][0]
        errors = 0
        with httpx.Client(timeout=10) as h:  # keeps connections alive unless the server says otherwise
            for _ in range(60):
                try:
                    r = h.get(f"{srv.rest_url}/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": first,
                                                                         "limit": 1000})
                    assert r.headers["connection"] == "close" and r.json()[0]["a"] == first
                except httpx.TransportError:
                    errors += 1
        assert errors == 0  # before: ~1 in 10 failed with "disconnected without sending a response"
    finally:
        srv.stop()


def _gap_client(srv: ExchangeServer, stop_backfill_s: float) -> tuple[MarketWsClient, int, int]:
    """A client that saw the first two trades and one 5,000 ids later: a gap of 5 REST pages, which
    the live loop never tries (grace 60 s) and one attempt (2 pages) cannot fill."""
    hist = srv._history["BTCUSDT"]
    ids = srv.produced_trade_ids["BTCUSDT"]
    lo, hi = ids[0], ids[0] + 5_001
    c = MarketWsClient(WsClientConfig(url=srv.stream_url(), gap_grace_s=60, backfill_attempts=1,
                                      max_backfill_pages=2, stop_backfill_s=stop_backfill_s))
    for a in (lo, lo + 1, hi):
        c.handle(dumps(combined("btcusdt@aggTrade", hist[a])))
    return c, lo, hi


async def _stop(c: MarketWsClient) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        await c.finish_backfill(http)
    c.close()


def test_at_stop_open_gaps_are_backfilled_while_that_makes_progress_then_reported() -> None:
    srv = rate_server(5_000)
    try:
        assert wait_until(lambda: len(srv.produced_trade_ids["BTCUSDT"]) > 6_000, 20)
        c, lo, hi = _gap_client(srv, stop_backfill_s=60)
        asyncio.run(asyncio.wait_for(_stop(c), 60))
        out = c.drain()
        assert sorted(r["agg_trade_id"] for k, r in out if k == "trade") == list(range(lo, hi + 1))
        assert [r for k, r in out if k == "deadletter"] == [] and c.counters.backfill_pages >= 5

        # no budget left at stop: one attempt, and what it could not fill is an id_gap dead letter, open at stop
        c, lo, hi = _gap_client(srv, stop_backfill_s=0)
        asyncio.run(asyncio.wait_for(_stop(c), 60))
        dead = [gap_range(r) for k, r in c.drain() if k == "deadletter"]
        assert dead == [(lo + 2 + 2_000, hi - 1, False)] and c.counters.gap_trades_unfilled == hi - lo - 2_002
    finally:
        srv.stop()


def test_a_burst_runs_the_market_ten_times_as_fast_same_ids_times_on_the_clock() -> None:
    clock = MarketClock()
    clock.burst(1_000, 10, 2)
    assert (clock.market(1_500), clock.market(3_000), clock.market(4_000)) == (6_000, 21_000, 22_000)
    assert (clock.wall(6_000), clock.wall(22_000)) == (1_500, 4_000)
    srv = rate_server(200)
    try:
        ids = srv.produced_trade_ids["BTCUSDT"]
        time.sleep(1.0)
        n0, t0 = len(ids), time.time()
        srv.burst(10, 1.0)
        time.sleep(1.0)
        n1 = len(ids)
        time.sleep(1.0)
        n2, t2 = len(ids), time.time()
        assert 1_400 <= n1 - n0 <= 2_600, n1 - n0  # ~2,000 in the burst second (200/s × 10)
        assert n2 - n1 <= 500, n2 - n1  # back to ~200/s
        assert ids == list(range(ids[0], ids[0] + len(ids)))  # the ids of the market, none skipped
        times = [srv._history["BTCUSDT"][i]["E"] for i in ids]
        assert times == sorted(times) and times[-1] <= t2 * 1000 + 20 and times[n0] >= t0 * 1000 - 20
    finally:
        srv.stop()


def test_the_drain_sees_a_hole_on_the_bus_and_the_soak_check_sees_a_trade_that_never_landed(
        tmp_path: Path, redis_url: str) -> None:
    r = bus.wait_ready(redis_url)
    keys = bus.Keys("drain_sees")
    st = SymbolState(ledger=IdLedger(99, [(106, 120)]))  # ids ≤ 99 and 106..120 on the bus
    r.hset(keys.harvest_state("BTCUSDT"), b"state", st.dumps())
    assert missing_on_bus(r, keys, {"BTCUSDT": 110}) == {"BTCUSDT": 6}  # the hole 100..105
    assert missing_on_bus(r, keys, {"BTCUSDT": 125}) == {"BTCUSDT": 11}  # and 121..125 not there yet
    assert missing_on_bus(r, keys, {"BTCUSDT": 99}) == {}
    assert missing_on_bus(r, keys, {"ETHUSDT": 5}) == {"ETHUSDT": 1}  # nothing of it on the bus

    part = tmp_path / "landing" / "raw" / "date=2024-03-04" / "symbol=BTCUSDT"
    part.mkdir(parents=True)
    pl.DataFrame({"agg_trade_id": [10, 11, 13, 13, 15]}).write_parquet(part / "trades_0000.parquet")
    server = SimpleNamespace(produced_trade_ids={"BTCUSDT": list(range(5, 20))},
                             sent_trade_ids={"BTCUSDT": [10, 11, 13, 15, 16]})
    assert feed_trades_missing(tmp_path, ["BTCUSDT"], server) == {"BTCUSDT": {"missing": 3, "doubled": 1}}


def test_a_confirmed_jump_within_max_backfill_gap_is_backfilled_not_given_up() -> None:
    """A reconnect during a burst: the first trade on the new connection is far above the last one."""
    t_ms = int(time.time() * 1000)
    c = MarketWsClient(WsClientConfig(url="ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade", max_trade_id_jump=1_000,
                                      max_backfill_gap=10_000))
    for a in (1, 2, 5_000, 5_001):
        c.handle(dumps(combined("btcusdt@aggTrade", {"e": "aggTrade", "E": t_ms, "s": "BTCUSDT", "a": a, "p": "1.0",
                                                     "q": "1.0", "f": a, "l": a, "T": t_ms, "m": False})), t_ms + 5)
    out = c.drain()
    assert [r for k, r in out if k == "deadletter"] == [] and c.counters.resyncs == 1
    assert c.open_gaps() == 4_997 and c.counters.trade_gaps == 1  # a gap to backfill by REST

"""The exchange simulator server and the WS client over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable

import httpx
import polars as pl
import pytest

from alpha_assets.market.exchange_server import ExchangeServer, simulator_sources
from alpha_assets.market.schema import BOOK_SCHEMA, TRADE_SCHEMA, empty
from alpha_assets.market.sources import ReplaySource
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig
from alpha_assets.processes import wait_until

SYMS = ["BTCUSDT"]


@pytest.fixture()
def server():
    srv = ExchangeServer(simulator_sources(SYMS, seed=11, start_ms=int(time.time() * 1000)), tick_ms=50).start()
    try:
        yield srv
    finally:
        srv.stop()


def run_client(client: MarketWsClient, seconds: float, actions: list[tuple[float, object]],
               until: Callable[[list], bool] | None = None, deadline_s: float = 60.0) -> list:
    """Run the client for `seconds`, and beyond (up to `deadline_s`) until `until(items)` holds."""
    items: list = []

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        t0 = time.monotonic()
        pending = list(actions)
        while time.monotonic() - t0 < seconds or (
                until is not None and not until(items) and time.monotonic() - t0 < deadline_s):
            while pending and time.monotonic() - t0 >= pending[0][0]:
                pending.pop(0)[1]()
            items.extend(client.drain())
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 15)
        items.extend(client.drain())

    asyncio.run(main())
    return items


def trade_ids(items: list) -> list[int]:
    return [row["agg_trade_id"] for kind, row in items if kind == "trade"]


def test_two_drops_reconnect_and_lose_no_trades(server: ExchangeServer) -> None:
    cfg = WsClientConfig(url=server.stream_url(), backoff_initial_s=0.6, gap_grace_s=0.2, read_timeout_s=5)
    client = MarketWsClient(cfg)
    items = run_client(client, 6.0, [(1.5, server.drop_connections), (3.5, server.drop_connections)])
    c = client.counters
    assert server.stats.drops == 2 and c.reconnect_count == 2 and c.connects == 3
    ids = trade_ids(items)
    assert len(ids) == len(set(ids)), "no trade delivered twice"
    got = sorted(ids)
    assert got == list(range(got[0], got[-1] + 1)), "ids continuous after gap fill"
    produced = server.produced_trade_ids["BTCUSDT"]
    sent = set(server.sent_trade_ids["BTCUSDT"])
    assert set(got) <= set(produced)
    # Trades produced while disconnected were never sent on the socket: they came by REST backfill.
    backfilled = set(got) - sent
    assert c.trade_gaps >= 1 and len(backfilled) == c.gap_trades_filled - c.out_of_order > 0
    assert server.stats.backfill_requests >= 1
    assert c.gap_trades_unfilled == 0 and c.deadletter == 0 and c.queue_dropped == 0
    assert all(r["filled"] for r in client.gap_reports if r.get("kind") != "book")
    books = [row for kind, row in items if kind == "book"]
    assert len(books) > 30 and all(b["bid_px_1"] < b["ask_px_1"] for b in books)


class Quiet:
    """A market that has gone quiet: nothing more to send."""

    def advance_to(self, t_ms: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        return empty(TRADE_SCHEMA), empty(BOOK_SCHEMA)


def test_trades_sent_while_disconnected_with_none_after_them_come_by_rest(server: ExchangeServer) -> None:
    """A drop, then the market goes quiet before the client is back: no live trade follows to reveal
    the gap, so the reconnect's tail probe asks REST what came after the last trade."""
    cfg = WsClientConfig(url=server.stream_url(), backoff_initial_s=1.0, immediate_reconnect_after_s=3600,
                         gap_grace_s=0.2, read_timeout_s=30)
    client = MarketWsClient(cfg)

    def go_quiet() -> None:
        server.sources["BTCUSDT"] = Quiet()

    def caught_up(got: list) -> bool:
        ids = trade_ids(got)
        return bool(ids) and sorted(ids) == produced[produced.index(ids[0]):]

    produced = server.produced_trade_ids["BTCUSDT"]
    items = run_client(client, 4.0, [(1.5, server.drop_connections), (2.0, go_quiet)], until=caught_up)
    c = client.counters
    ids = trade_ids(items)
    assert server.stats.drops == 1 and c.reconnect_count == 1 and c.tail_probes >= 1
    assert sorted(ids) == produced[produced.index(ids[0]):] and len(ids) == len(set(ids))
    tail = set(ids) - set(server.sent_trade_ids["BTCUSDT"])  # produced while the client was away
    assert tail and max(tail) == max(ids), "the last trades came by REST, not on the socket"
    assert c.gap_trades_filled >= len(tail) and c.deadletter == 0 and c.gap_trades_unfilled == 0


def test_a_long_lived_connection_reconnects_at_once_a_short_one_backs_off(server: ExchangeServer) -> None:
    cfg = WsClientConfig(url=server.stream_url(), backoff_initial_s=3.0, immediate_reconnect_after_s=1.0,
                         gap_grace_s=0.2)
    client = MarketWsClient(cfg)
    # 1.5 s of streaming then a drop: back within the test; 0.7 s later another drop: 3 s back-off
    run_client(client, 4.0, [(1.5, server.drop_connections), (2.2, server.drop_connections)])
    assert server.stats.drops == 2
    assert (client.counters.connects, client.counters.reconnect_count) == (2, 1)


def test_stall_triggers_watchdog_reconnect(server: ExchangeServer) -> None:
    cfg = WsClientConfig(url=server.stream_url(), read_timeout_s=0.5, backoff_initial_s=0.1, gap_grace_s=0.2)
    client = MarketWsClient(cfg)
    items = run_client(client, 4.0, [(1.0, lambda: server.stall(1.5))])
    assert client.counters.watchdog_timeouts >= 1 and client.counters.reconnect_count >= 1
    got = sorted(trade_ids(items))
    assert len(got) == len(set(got)) and got == list(range(got[0], got[-1] + 1))


def test_malformed_and_out_of_order_messages(server: ExchangeServer) -> None:
    cfg = WsClientConfig(url=server.stream_url(), gap_grace_s=1.0)
    client = MarketWsClient(cfg)
    items = run_client(client, 3.0, [(0.8, lambda: server.send_malformed(3)),
                                      (1.0, lambda: server.reorder_next_trades(3))])
    dead = [row for kind, row in items if kind == "deadletter"]
    assert len(dead) == 3 == client.counters.deadletter
    assert {d["reason"] for d in dead} <= {"bad_json", "missing_field:s", "bad_value:a", "missing_field:E",
                                           "bad_number:a", "missing_field:a"} | {d["reason"] for d in dead}
    assert all(d["payload"] for d in dead)
    assert server.stats.reordered >= 1
    assert client.counters.out_of_order == server.stats.reordered
    got = sorted(trade_ids(items))
    assert len(got) == len(set(got)) and got == list(range(got[0], got[-1] + 1))


def test_unfillable_gap_is_reported_not_lost() -> None:
    client = MarketWsClient(WsClientConfig(url="ws://127.0.0.1:9/stream", backfill=False, gap_grace_s=0))

    def msg(a: int) -> str:
        data = {"e": "aggTrade", "E": 1000, "s": "BTCUSDT", "a": a, "p": "100.0", "q": "1", "f": a, "l": a,
                "T": 1000, "m": False}
        return json.dumps({"stream": "btcusdt@aggTrade", "data": data})

    for a in (1, 2, 5, 5, 3):
        client.handle(msg(a), recv_ms=1001)

    async def fill() -> None:
        async with httpx.AsyncClient() as http:
            await client.backfill_due(http, force=True)

    asyncio.run(fill())
    items = client.drain()
    assert trade_ids(items) == [1, 2, 5, 3]
    dead = [row for kind, row in items if kind == "deadletter"]
    assert [d["reason"] for d in dead] == ["duplicate", "id_gap"]
    assert dead[1]["key"] == "4-4" and client.counters.gap_trades_unfilled == 1
    assert client.counters.out_of_order == 1


def test_rest_backfill_endpoint_and_bad_requests(server: ExchangeServer) -> None:
    time.sleep(1.0)
    first = server.produced_trade_ids["BTCUSDT"][0]
    r = httpx.get(f"{server.rest_url}/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": first, "limit": 5})
    assert r.status_code == 200 and [t["a"] for t in r.json()] == list(range(first, first + 5))
    assert httpx.get(f"{server.rest_url}/fapi/v1/aggTrades", params={"symbol": "NOPE", "fromId": 1}).status_code == 400
    assert httpx.get(f"{server.rest_url}/fapi/v1/aggTrades", params={"symbol": "BTCUSDT"}).status_code == 400


def test_client_config_validation() -> None:
    with pytest.raises(ValueError, match="url"):
        WsClientConfig(url="http://x")
    with pytest.raises(ValueError, match="read_timeout_s"):
        WsClientConfig(url="ws://x/stream", read_timeout_s=0)


def test_replay_of_real_capture_is_served_in_order() -> None:
    from alpha_assets.market.capture import read_ws_capture
    from alpha_assets.market.exchange_server import replay_sources
    from alpha_assets.paths import shared_data_dir

    capture = shared_data_dir() / "binance_um_ws_capture_20240808" / "usdm_btcusdt_20240808.gz"
    if not capture.exists():
        pytest.skip(f"shared capture not found at {capture}")
    # The replay starts a day ahead, so nothing is served before the client is connected; then it
    # restarts at now. On a loaded machine the client may connect after a 20x replay has served the
    # whole head of the capture to nobody.
    ahead = int(time.time() * 1000) + 86_400_000
    srv = ExchangeServer(replay_sources(str(capture), ["BTCUSDT"], ahead, speed=20.0), tick_ms=50).start()
    recording = srv.sources["BTCUSDT"]
    assert isinstance(recording, ReplaySource)

    def replay_once_connected() -> None:
        wait_until(lambda: srv.connection_count() >= 1, 60, "the client's connection", interval_s=0.02)
        srv.sources["BTCUSDT"] = ReplaySource(recording.trades, recording.book, int(time.time() * 1000), 20.0)

    try:
        client = MarketWsClient(WsClientConfig(url=srv.stream_url(), gap_grace_s=5.0))
        threading.Thread(target=replay_once_connected, daemon=True).start()
        items = run_client(client, 3.0, [], until=lambda got: len(trade_ids(got)) >= 100)
    finally:
        srv.stop()
    ids = trade_ids(items)
    produced = srv.produced_trade_ids["BTCUSDT"]
    recorded = read_ws_capture(capture)["trades"].sort("event_time_ms", "agg_trade_id")["agg_trade_id"].to_list()
    assert len(produced) > 100 and produced == recorded[: len(produced)]
    # what the client read is an unbroken slice of what the exchange produced (it joined after the
    # first trades; the server may still have had frames in flight when the client stopped)
    assert ids, "the client received no trade"
    k = produced.index(ids[0])
    assert ids == produced[k:k + len(ids)] and set(ids) <= set(srv.sent_trade_ids["BTCUSDT"])
    assert client.counters.deadletter == 0 and client.counters.duplicates == 0

"""The issue's classes through the real harvest worker (its own run loop) into the landing zone:
crash, lost after restart, landed as valid, vanished, connection dropped, gap open at stop."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from alpha_assets.live.workers.common import WorkerConfig
from alpha_assets.live.workers.harvest import Harvester
from alpha_assets.market.binance import combined, dumps
from alpha_assets.market.exchange_server import ExchangeServer, simulator_sources
from alpha_assets.market.id_ledger import gap_range
from alpha_assets.market.injection import MalformedPlan, match_deadletters
from alpha_assets.market.landing import LandingWriter, load_deadletters, partition_dir
from alpha_assets.market.malformed import IN_BAND, KINDS
from alpha_assets.market.schema import UNROUTED
from alpha_assets.market.streams import symbol_of_stream
from tests.hostile.sut import HUGE_BYTES, LARGE_BYTES, HarvesterUnderTest, Outcome, quiesce, wait_until
from tests.live.conftest import free_port

SYMS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture()
def market() -> Iterator[ExchangeServer]:
    plan = MalformedPlan(large_bytes=LARGE_BYTES, huge_bytes=HUGE_BYTES)
    srv = ExchangeServer(simulator_sources(SYMS, seed=23, start_ms=int(time.time() * 1000)), tick_ms=50,
                         malformed=plan).start()
    try:
        yield srv
    finally:
        srv.stop()


def flow(sut: HarvesterUnderTest, n: int = 30) -> None:
    seen = sut.messages()
    assert wait_until(lambda: sut.messages() > seen + n, 30), "market data stopped reaching the harvester"


def landed_ids(out: Outcome, sym: str) -> list[int]:
    return sorted(out.trade_ids(sym))


def test_every_kind_through_the_harvester(tmp_path: Path, market: ExchangeServer) -> None:
    sut = HarvesterUnderTest(tmp_path)
    sut.start(market, SYMS)
    flow(sut)
    market.send_malformed(len(IN_BAND))  # every in-band kind once, class after class
    assert wait_until(lambda: len(market.injected) == len(IN_BAND), 60)
    flow(sut)
    quiesce(market, sut)
    out = sut.stop()
    rep = match_deadletters(market.injected, out.deadletters)
    assert rep.ok, rep.summary()
    # nothing bad landed, nothing valid lost or doubled
    for sym in SYMS:
        ids = out.trade_ids(sym)
        assert len(ids) == len(set(ids)) and sorted(ids) == list(range(min(ids), max(ids) + 1)), sym
        assert set(ids) <= set(market.produced_trade_ids[sym])
        for r in market.injected:
            if r["symbol"] == sym and r["mode"] == "replace" and KINDS[r["kind"]].template == "trade":
                assert r["template_id"] in ids, r
        us = [b["last_update_id"] for b in out.books if b["symbol"] == sym]
        assert len(us) == len(set(us))
    assert all(b["bid_px_1"] < b["ask_px_1"] for b in out.books)
    # every dead letter is filed by the stream it came on; what belongs to no symbol is _UNROUTED
    date = time.strftime("%Y-%m-%d", time.gmtime())
    buckets = {b: load_deadletters(tmp_path, date, b) for b in [*SYMS, UNROUTED]}
    assert sum(f.height for f in buckets.values()) == len(out.deadletters)
    for bucket, frame in buckets.items():
        for d in frame.iter_rows(named=True):
            owner = d["symbol"] if d["stream"] == "rest" else symbol_of_stream(d["stream"])
            assert (owner if owner in SYMS else UNROUTED) == bucket, d
    # an unknown symbol has its own bucket; a padded one stays with its stream, as received
    assert "DOGEUSDT" in buckets[UNROUTED]["symbol"].to_list()
    assert any(s.endswith(" ") for b in SYMS for s in buckets[b]["symbol"].drop_nulls().to_list())
    beat = sut.beat()
    assert beat["unlandable_rows"] == 0 and beat["land_failures"] == 0 and beat["spilled_rows"] == 0
    assert beat["gap_trades_unfilled"] == 0 and beat["reconnect_count"] == 0


def test_a_gap_open_at_stop_is_reported_and_a_restart_fills_it(tmp_path: Path, market: ExchangeServer) -> None:
    # First life: REST is unreachable, so the hole a replaced trade leaves cannot be filled.
    dead_rest = f"http://127.0.0.1:{free_port()}"
    a = HarvesterUnderTest(tmp_path, run_id="r1", rest_url=dead_rest, backfill_attempts=100)
    a.start(market, SYMS)
    flow(a)
    market.send_malformed(2, ["id_jump_million", "replaced_by_nan_price"])
    assert wait_until(lambda: len(market.injected) == 2, 30)
    flow(a)
    first = a.stop()
    jump, hole = market.injected
    sym = hole["symbol"]
    assert hole["template_id"] not in first.trade_ids(sym)
    gaps = [gap_range(d) for d in first.deadletters if d["reason"] == "id_gap"]
    assert any(lo <= hole["template_id"] <= hi and not final for lo, hi, final in gaps), gaps
    assert [d["reason"] for d in first.deadletters if jump["tag"] in d["payload"]] == ["id_jump"]
    state = json.loads((tmp_path / "runtime/harvest/r1/state.json").read_text())
    ledger = state["ledgers"][sym]
    # the landed prefix stops below the hole, even though higher ids (and a bogus one) arrived
    assert ledger["prefix"] < hole["template_id"] and ledger["ranges"]
    assert all(hi < jump["template_id"] + 1_000_000 for _, hi in ledger["ranges"])

    # Second life, same run: it resumes from the contiguous landed prefix and backfills the hole.
    b = HarvesterUnderTest(tmp_path, run_id="r1")
    b.start(market, SYMS)
    flow(b)
    quiesce(market, b)
    out = b.stop()
    for s in SYMS:
        ids = out.trade_ids(s)
        assert len(ids) == len(set(ids)), f"{s}: a trade landed twice across the restart"
        assert sorted(ids) == list(range(min(ids), max(ids) + 1)), f"{s}: a trade lost across the restart"
    assert hole["template_id"] in out.trade_ids(sym)
    assert jump["template_id"] + 1_000_000 not in out.trade_ids(sym)
    assert b.beat()["restarts_seen"] == 1


def test_a_crash_between_the_trades_and_the_book_file_neither_loses_nor_doubles(tmp_path: Path) -> None:
    url = "ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade/btcusdt@depth5@100ms"
    cfg = WorkerConfig(run_id="c1", data_root=tmp_path, symbols=["BTCUSDT"], ws_url=url, lateness_ms=0)
    now = int(time.time() * 1000)
    t0 = now // 60_000 * 60_000 - 120_000  # a whole minute, two minutes ago

    def trade(a: int, t: int) -> bytes:
        return dumps(combined("btcusdt@aggTrade", {"e": "aggTrade", "E": t, "a": a, "s": "BTCUSDT", "p": "100.5",
                                                   "q": "1", "f": a, "l": a, "T": t, "m": False}))

    def book(u: int, t: int) -> bytes:
        return dumps(combined("btcusdt@depth5@100ms", {"e": "depthUpdate", "E": t, "T": t, "s": "BTCUSDT", "U": u - 1,
                                                       "u": u, "pu": u - 2, "b": [["100.4", "1"]], "a": [["100.6", "1"]]}))

    h = Harvester(cfg)
    for i in range(10):
        h.client.handle(trade(100 + i, t0 + 1000 * i), now)
        h.client.handle(book(1000 + 2 * i, t0 + 1000 * i), now)
    h.take()

    class Crash(BaseException):
        pass

    real = LandingWriter.land_rows

    def dies_on_book(self: LandingWriter, kind: str, rows: list, fallback_ms: int):  # type: ignore[no-untyped-def]
        if kind == "book":
            raise Crash
        return real(self, kind, rows, fallback_ms)

    LandingWriter.land_rows = dies_on_book  # type: ignore[method-assign]
    try:
        with pytest.raises(Crash):
            h.land(final=True)
    finally:
        LandingWriter.land_rows = real  # type: ignore[method-assign]
    raw = partition_dir(tmp_path, "raw", time.strftime("%Y-%m-%d", time.gmtime(t0 / 1000)), "BTCUSDT")
    assert [p.name.split("_")[0] for p in raw.glob("*.parquet")] == ["trades"]  # the book never made it

    h2 = Harvester(cfg)  # the restart
    assert h2.c["intent_recovered"] == 1 and h2.ledgers["BTCUSDT"].prefix == 109
    # the exchange (or the REST backfill) shows the landed trades again: not landed a second time
    for i in range(12):
        h2.client.handle(trade(100 + i, t0 + 1000 * i), now)
    h2.take()
    h2.land(final=True)
    trades = pl.concat([pl.read_parquet(p) for p in raw.glob("trades_*.parquet")])
    assert sorted(trades["agg_trade_id"].to_list()) == list(range(100, 112))
    reasons = [r["reason"] for r in load_deadletters(tmp_path, time.strftime("%Y-%m-%d", time.gmtime(now / 1000)),
                                                     "BTCUSDT").to_dicts()]
    assert reasons.count("duplicate") == 10


def test_landing_keeps_the_good_rows_of_a_minute_with_bad_ones(tmp_path: Path) -> None:
    w = LandingWriter(tmp_path, "BTCUSDT")
    t0 = 1_723_161_240_000
    good = [{"symbol": "BTCUSDT", "event_time_ms": t0 + i, "trade_time_ms": t0 + i, "recv_time_ms": t0 + i + 5,
             "agg_trade_id": i, "price": 100.0 + i, "qty": 1.0, "is_buyer_maker": False} for i in range(5)]
    bad = [dict(good[0], agg_trade_id=50, symbol="BTCUSDT "), dict(good[0], agg_trade_id=51, event_time_ms=10**16),
           dict(good[0], agg_trade_id=52, event_time_ms=2**63), dict(good[0], agg_trade_id=53, price=float("nan")),
           dict(good[0], agg_trade_id=54.0), dict(good[0], agg_trade_id=55, is_buyer_maker="no"), "not a row"]
    res = w.land_rows("trades", [*good[:2], *bad, *good[2:]], fallback_ms=t0)  # type: ignore[list-item]
    assert res.landed == 5 and not res.failed
    assert sorted(d["reason"] for d in res.deadletters) == sorted([
        "unlandable:symbol", "unlandable:event_time", "unlandable:type:event_time_ms", "unlandable:type:price",
        "unlandable:type:agg_trade_id", "unlandable:type:is_buyer_maker", "unlandable:type:row"])
    landed = pl.read_parquet(w.path("trades", "2024-08-08", "2354"))
    assert landed["agg_trade_id"].to_list() == [0, 1, 2, 3, 4]
    dl = load_deadletters(tmp_path, "2024-08-08", "BTCUSDT")
    assert dl.height == 7 and set(dl["symbol"].drop_nulls()) == {"BTCUSDT", "BTCUSDT "}
    # an unreadable minute file is set aside, reported, and does not block the minute
    path = w.path("trades", "2024-08-08", "2354")
    path.write_bytes(b"garbage")
    res = w.land_rows("trades", good[:1], fallback_ms=t0)
    assert res.landed == 1 and w.quarantined and w.quarantined[0].read_bytes() == b"garbage"
    # a minute that cannot be written is handed back, not raised
    w2 = LandingWriter(tmp_path / "ro", "BTCUSDT")
    (tmp_path / "ro").write_text("a file where the landing directory should be")
    res = w2.land_rows("trades", good, fallback_ms=t0)
    assert res.landed == 0 and len(res.failed) == 1 and res.failed[0][2] == good


def test_rest_that_serves_only_higher_ids_cannot_loop(tmp_path: Path) -> None:
    """A protocol-faithful /fapi/v1/aggTrades that always answers ids above the one asked."""
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    import httpx

    from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig

    calls = []

    class Above(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            calls.append(int(q["fromId"]))
            start = int(q["fromId"]) + 10_000
            body = json.dumps([{"a": start + i, "p": "1.0", "q": "1.0", "f": 1, "l": 1, "T": 1_723_161_256_000,
                                "m": False} for i in range(3)]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Above)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = "ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade"
        c = MarketWsClient(WsClientConfig(url=url, rest_url=f"http://127.0.0.1:{srv.server_port}", gap_grace_s=0,
                                          backfill_attempts=3, max_backfill_pages=5))
        for a in (1, 2, 500):
            c.handle(dumps(combined("btcusdt@aggTrade", {"e": "aggTrade", "E": 1_723_161_256_000, "a": a, "s": "BTCUSDT",
                                                         "p": "1.0", "q": "1.0", "f": a, "l": a, "T": 1_723_161_256_000,
                                                         "m": False})), 1_723_161_256_005)

        async def fill() -> None:
            async with httpx.AsyncClient() as http:
                for _ in range(3):
                    await c.backfill_due(http, force=True)

        asyncio.run(asyncio.wait_for(fill(), 30))
    finally:
        srv.shutdown()
    assert len(calls) == 3 and c.counters.backfill_unserved == 3  # one request per attempt, then it stops
    dead = [r for k, r in c.drain() if k == "deadletter"]
    assert [gap_range(d) for d in dead] == [(3, 499, True)] and c.open_gaps() == 0

"""The issue's classes through the real live-path workers — harvester → Redis streams → lander →
landing zone, on a real redis-server: crash, lost after restart, landed as valid, vanished,
connection dropped, gap open at stop, a crash between two writes, a write that fails."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import polars as pl
import pytest

from alpha_assets.live import bus, bus_admin
from alpha_assets.live.workers.common import MINUTE_MS, WorkerConfig, read_json
from alpha_assets.live.workers.harvest import client_config
from alpha_assets.live.workers.harvest_state import SymbolState
from alpha_assets.live.workers.lander import Lander
from alpha_assets.market.binance import combined, dumps
from alpha_assets.market.exchange_server import ExchangeServer, simulator_sources
from alpha_assets.market.id_ledger import gap_range
from alpha_assets.market.injection import MalformedPlan, match_deadletters
from alpha_assets.market.landing import LandingWriter, load_deadletters, load_landing, partition_dir
from alpha_assets.market.malformed import IN_BAND, KINDS
from alpha_assets.market.schema import UNROUTED
from alpha_assets.market.streams import symbol_of_stream
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig
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


def test_every_kind_through_the_harvester(tmp_path: Path, market: ExchangeServer, redis_url: str) -> None:
    sut = HarvesterUnderTest(tmp_path, redis_url, run_id="every")
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
            assert d["recv_time_ms"] is not None, d  # received when, as data
    # an unknown symbol has its own bucket; a padded one stays with its stream, as received
    assert "DOGEUSDT" in buckets[UNROUTED]["symbol"].to_list()
    assert any(s.endswith(" ") for b in SYMS for s in buckets[b]["symbol"].drop_nulls().to_list())
    c = out.counters
    assert c["unrouted_deadletters"] == buckets[UNROUTED].height > 0
    assert c["unlandable_rows"] == 0 and c["land_failures"] == 0 and c["spilled_rows"] == 0
    assert c["gap_trades_unfilled"] == 0 and c["reconnect_count"] == 0
    assert c["deadletter"] == len(out.deadletters) == c["deadletter_landed"]


def hv_state(sut: HarvesterUnderTest, sym: str) -> bytes:
    return sut.redis.hget(sut.keys.harvest_state(sym), b"state")


def test_a_gap_open_at_stop_is_reported_and_a_restart_fills_it(tmp_path: Path, market: ExchangeServer,
                                                                redis_url: str) -> None:
    # First life: REST is unreachable, so the hole a replaced trade leaves cannot be filled.
    dead_rest = f"http://127.0.0.1:{free_port()}"
    a = HarvesterUnderTest(tmp_path, redis_url, run_id="r1", rest_url=dead_rest, backfill_attempts=100)
    a.start(market, SYMS)
    flow(a)
    early = {s: hv_state(a, s) for s in SYMS}  # what a harvester that died before its state writes left
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
    ledger = SymbolState.loads(hv_state(a, sym)).ledger
    # the streamed prefix stops below the hole, even though higher ids (and a bogus one) arrived
    assert ledger.prefix < hole["template_id"] and ledger.ranges()
    assert all(hi < jump["template_id"] + 1_000_000 for _, hi in ledger.ranges())
    # the state is rolled back to one saved before most of the entries (a crash between the
    # entries and their state): the restart must bring it up to the stream, not re-send it
    r = bus.wait_ready(redis_url)
    for s in SYMS:
        r.hset(a.keys.harvest_state(s), b"state", early[s])

    # Second life, same run: it resumes from the contiguous prefix and backfills the hole.
    b = HarvesterUnderTest(tmp_path, redis_url, run_id="r1")
    b.start(market, SYMS)
    flow(b)
    quiesce(market, b)
    out = b.stop()
    for s in SYMS:
        ids = out.trade_ids(s)
        assert len(ids) == len(set(ids)), f"{s}: a trade landed twice across the restart"
        assert sorted(ids) == list(range(min(ids), max(ids) + 1)), f"{s}: a trade lost across the restart"
        streamed = [bus.decode(f)[1]["agg_trade_id"] for _, f in r.xrange(b.keys.md(s)) if bus.KIND_TRADE in f]
        assert len(streamed) == len(set(streamed)), f"{s}: a trade published twice across the restart"
    assert hole["template_id"] in out.trade_ids(sym)
    assert jump["template_id"] + 1_000_000 not in out.trade_ids(sym)
    assert b.beat()["restarts_seen"] == 1 and b.beat()["replayed_trades"] == 0


# ------------------------------------------------------------------------------------- the lander
T0 = (int(time.time() * 1000) // MINUTE_MS - 3) * MINUTE_MS  # a whole minute, three minutes ago
DATE = time.strftime("%Y-%m-%d", time.gmtime(T0 / 1000))


def trade_row(a: int, t: int, **kw: Any) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "event_time_ms": t, "trade_time_ms": t, "recv_time_ms": t + 3, "agg_trade_id": a,
            "price": 100.5, "qty": 1.0, "is_buyer_maker": False, "ingest_seq": a, "rn": (t + 3) * 10**6, "g": 0, **kw}


def book_row(u: int, t: int) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "event_time_ms": t, "recv_time_ms": t + 3, "first_update_id": u - 1,
            "last_update_id": u, "prev_last_update_id": u - 2, "bid_px_1": 100.4, "bid_qty_1": 1.0,
            "ask_px_1": 100.6, "ask_qty_1": 1.0, "ingest_seq": u, "rn": (t + 3) * 10**6, "g": 0}


def lander_for(root: Path, redis_url: str, run_id: str) -> tuple[Lander, Any]:
    cfg = WorkerConfig(run_id=run_id, data_root=root, symbols=["BTCUSDT"], bus_url=redis_url, start_ms=T0,
                       lateness_ms=0)
    lander = Lander(cfg)
    r = bus.wait_ready(redis_url)
    bus.ensure_groups(r, lander.streams, bus.GROUP_LANDER)
    return lander, r


def publish(r: Any, keys: bus.Keys, rows: list[tuple[bytes, dict[str, Any]]], seq0: int = 1) -> None:
    for seq, (kind, row) in enumerate(rows, seq0):
        r.xadd(keys.md("BTCUSDT"), bus.encode(kind, row), id=bus.make_id(T0 + 60_000 + seq, seq))


def consume(lander: Lander, r: Any) -> None:
    while True:
        fresh, skipped = lander.reader.read(r, count=7, block_ms=10)
        if not (fresh or skipped):
            return
        lander.take(fresh)
        lander.settle(r, skipped)
        lander.land(r)


def test_a_lander_crash_between_the_trades_and_the_book_file_neither_loses_nor_doubles(
        tmp_path: Path, redis_url: str) -> None:
    first, r = lander_for(tmp_path, redis_url, "c1")
    rows = [x for i in range(10) for x in ((bus.KIND_TRADE, trade_row(100 + i, T0 + 1000 * i)),
                                           (bus.KIND_BOOK, book_row(1000 + 2 * i, T0 + 1000 * i)))]
    publish(r, first.keys, rows)
    first.take(first.reader.read(r, count=100, block_ms=10)[0])

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
            first.finish(r)
    finally:
        LandingWriter.land_rows = real  # type: ignore[method-assign]
    raw = partition_dir(tmp_path, "raw", DATE, "BTCUSDT")
    assert [p.name.split("_")[0] for p in raw.glob("*.parquet")] == ["trades"]  # the book never made it
    md = first.keys.md("BTCUSDT")
    assert r.xpending(md, bus.GROUP_LANDER)["pending"] == 20  # nothing acknowledged that is not durable

    again, r = lander_for(tmp_path, redis_url, "c1")  # the restart takes the minute back from its pending list
    consume(again, r)
    again.finish(r)
    landed = load_landing(tmp_path, DATE, "BTCUSDT")
    assert landed["trades"]["agg_trade_id"].to_list() == list(range(100, 110))
    assert landed["book"]["last_update_id"].to_list() == list(range(1000, 1020, 2))
    assert landed["deadletters"].height == 0 and r.xpending(md, bus.GROUP_LANDER)["pending"] == 0


def test_the_lander_isolates_bad_rows_retries_failed_writes_and_ignores_future_times(
        tmp_path: Path, redis_url: str) -> None:
    lander, r = lander_for(tmp_path, redis_url, "iso")
    good = [(bus.KIND_TRADE, trade_row(200 + i, T0 + 500 * i)) for i in range(8)]
    after = [(bus.KIND_TRADE, trade_row(250 + i, T0 + MINUTE_MS + 500 * i)) for i in range(2)]  # closes the minute
    bad = [(bus.KIND_TRADE, trade_row(300, T0 + 10, price="65_012.3")),  # what no validator should pass
           (bus.KIND_TRADE, trade_row(301, T0 + 11, symbol="ETHUSDT")),
           (bus.KIND_TRADE, trade_row(302, T0 + 12, agg_trade_id=3.5)),
           (bus.KIND_BOOK, {**book_row(5, T0 + 13), "first_update_id": None})]
    # received now, dated far ahead: it must not declare the current minutes final
    future = (bus.KIND_TRADE, trade_row(400, T0 + 10**10, recv_time_ms=T0 + 20))
    # the landing zone refuses writes: a file stands where the day's partition directory goes
    blocker = partition_dir(tmp_path, "raw", DATE, "BTCUSDT")
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")
    publish(r, lander.keys, [*good[:4], *bad, future, *good[4:], *after])
    md = lander.keys.md("BTCUSDT")
    r.xadd(md, {bus.KIND_TRADE: b"{not json"}, id=bus.make_id(T0 + MINUTE_MS + 900, 900))  # filed by its arrival
    consume(lander, r)
    assert lander.c["land_failures"] >= 1 and lander.c["trades_landed"] == 0
    assert r.xpending(md, bus.GROUP_LANDER)["pending"] == 16  # kept, unacknowledged, for the retry
    wm = read_json(lander.cfg.watermark("BTCUSDT")).get("closed_through_ms")
    assert wm is None or wm <= T0, "a minute closed that did not land"
    blocker.unlink()
    time.sleep(1.1)  # the retry's back-off
    lander.land(r)
    landed = load_landing(tmp_path, DATE, "BTCUSDT")
    assert landed["trades"]["agg_trade_id"].to_list() == [200 + i for i in range(8)]  # the rest of the minute
    reasons = sorted(landed["deadletters"]["reason"].to_list())
    assert reasons == ["unlandable:missing:first_update_id", "unlandable:symbol", "unlandable:type:agg_trade_id",
                       "unlandable:type:price"]
    assert lander.c["unlandable_rows"] == 4
    # the minute after, and the far-future row's, are open: a time ahead of its receipt closes nothing
    assert r.xpending(md, bus.GROUP_LANDER)["pending"] == 4
    assert read_json(lander.cfg.watermark("BTCUSDT"))["closed_through_ms"] == T0 + MINUTE_MS
    bus_admin.mark_end(r, lander.keys, lander.keys.harvested(["BTCUSDT"]))
    assert lander.drained(r, bus_admin.read_end(r, lander.keys))
    lander.finish(r)
    assert r.xpending(md, bus.GROUP_LANDER)["pending"] == 0
    next_date = time.strftime("%Y-%m-%d", time.gmtime((T0 + MINUTE_MS) / 1000))
    assert "unlandable:type:row" in load_deadletters(tmp_path, next_date, "BTCUSDT")["reason"].to_list()
    assert lander.c["unlandable_rows"] == 5 and lander.c["spilled_rows"] == 0


def test_rows_the_landing_zone_still_refuses_at_the_end_are_spilled_not_dropped(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from alpha_assets.live.workers import lander as lander_module

    monkeypatch.setattr(lander_module, "RETRY_S", 0.01)
    lander, r = lander_for(tmp_path, redis_url, "spill")
    blocker = partition_dir(tmp_path, "raw", DATE, "BTCUSDT")
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")
    publish(r, lander.keys, [(bus.KIND_TRADE, trade_row(1 + i, T0 + 100 * i)) for i in range(6)])
    consume(lander, r)
    lander.finish(r)
    spilled = (tmp_path / "runtime/harvest/spill/unlanded.jsonl").read_bytes().splitlines()
    assert len(spilled) == 6 == lander.c["spilled_rows"] and lander.c["land_failures"] >= lander_module.FINAL_ATTEMPTS
    assert sorted(json.loads(line.split(b"\t", 1)[1])["agg_trade_id"] for line in spilled) == list(range(1, 7))
    assert r.xpending(lander.keys.md("BTCUSDT"), bus.GROUP_LANDER)["pending"] == 0


def test_the_lander_buffer_is_bounded_and_an_early_minute_does_not_close(tmp_path: Path, redis_url: str) -> None:
    """A minute that cannot close (the harvester still backfills a gap: `g` > 0) while 1,500 entries
    arrive, with room for 1,000: the oldest minute lands early, counted, and stays open in the watermark."""
    lander, r = lander_for(tmp_path, redis_url, "bound")
    lander.cfg.lander_buffer_max = 1_000
    rows = [(bus.KIND_TRADE, trade_row(1 + i, T0 + 20 * i, g=5)) for i in range(1_500)]
    publish(r, lander.keys, rows)
    while True:
        fresh, _ = lander.reader.read(r, count=200, block_ms=10)
        if not fresh:
            break
        lander.take(fresh)
        lander.land(r)
        assert lander.held <= 1_000 + 200
    assert lander.c["forced_minutes"] >= 1 and lander.held < 1_000
    assert load_landing(tmp_path, DATE, "BTCUSDT")["trades"].height >= 500
    assert read_json(lander.cfg.watermark("BTCUSDT")).get("closed_through_ms") in (None, T0)  # not final
    assert r.xpending(lander.keys.md("BTCUSDT"), bus.GROUP_LANDER)["pending"] == lander.held


def test_ws_client_overrides_reach_the_feed_client(tmp_path: Path) -> None:
    url = "ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade"
    cfg = WorkerConfig(data_root=tmp_path, symbols=["BTCUSDT"], ws_url=url,
                       ws_client={"max_trade_id_jump": 7, "validation": {"max_frame_bytes": 4096}})
    client = client_config(cfg)
    assert client.max_trade_id_jump == 7 and client.validation.max_frame_bytes == 4096 and client.url == url
    with pytest.raises(ValueError, match="ws_client.max_open_gaps"):
        WorkerConfig(data_root=tmp_path, symbols=["BTCUSDT"], ws_client={"max_open_gaps": 0})
    assert json.loads(cfg.model_dump_json())["ws_client"]["max_trade_id_jump"] == 7


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


T_REST_MS = 1_723_161_256_000


def rest_trade(a: int) -> dict[str, Any]:
    return {"a": a, "p": "1.0", "q": "1.0", "f": a, "l": a, "T": T_REST_MS, "m": False}


@contextmanager
def aggtrades_server(answer: Callable[[int, int], list[dict[str, Any]]]) -> Iterator[str]:
    """A protocol-faithful /fapi/v1/aggTrades on 127.0.0.1 answering `answer(fromId, limit)`; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            body = json.dumps(answer(int(q["fromId"]), int(q["limit"]))).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()


def client_with_gap(rest_url: str, ids: tuple[int, ...], **cfg: Any) -> MarketWsClient:
    """A feed client (no connection) that saw `ids` on the trade stream: the gaps between them are open."""
    c = MarketWsClient(WsClientConfig(url="ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade", rest_url=rest_url,
                                      gap_grace_s=0, **cfg))
    for a in ids:
        c.handle(dumps(combined("btcusdt@aggTrade", {"e": "aggTrade", "E": T_REST_MS, "s": "BTCUSDT",
                                                     **rest_trade(a)})), T_REST_MS + 5)
    return c


def backfill(c: MarketWsClient, rounds: int) -> None:
    async def fill() -> None:
        async with httpx.AsyncClient() as http:
            for _ in range(rounds):
                await c.backfill_due(http, force=True)
                if not c.open_gaps():
                    return

    asyncio.run(asyncio.wait_for(fill(), 60))


def test_rest_that_serves_only_higher_ids_cannot_loop() -> None:
    """An exchange that always answers ids above the one asked."""
    calls: list[int] = []

    def above(from_id: int, limit: int) -> list[dict[str, Any]]:
        calls.append(from_id)
        return [rest_trade(from_id + 10_000 + i) for i in range(3)]

    with aggtrades_server(above) as url:
        c = client_with_gap(url, (1, 2, 500), backfill_attempts=3, max_backfill_pages=5)
        backfill(c, 3)
    assert len(calls) == 3 and c.counters.backfill_unserved == 3  # one request per attempt, then it stops
    dead = [r for k, r in c.drain() if k == "deadletter"]
    assert [gap_range(d) for d in dead] == [(3, 499, True)] and c.open_gaps() == 0


def test_a_gap_larger_than_one_attempt_keeps_being_filled_while_it_makes_progress() -> None:
    """A burst the connection could not carry leaves a gap of many REST pages: attempts that fill
    holes do not use up the give-up budget, so the whole gap is backfilled (nothing dead-lettered)."""
    with aggtrades_server(lambda lo, limit: [rest_trade(a) for a in range(lo, min(lo + limit, 30_000))]) as url:
        # 3 attempts × 2 pages × 1000 ids reach 6,000 of the 29,997 missing ids
        c = client_with_gap(url, (1, 2, 30_000), backfill_attempts=3, max_backfill_pages=2)
        backfill(c, 40)
    out = c.drain()
    ids = sorted(r["agg_trade_id"] for k, r in out if k == "trade")
    assert ids == list(range(1, 30_001))
    assert [r for k, r in out if k == "deadletter"] == [] and c.open_gaps() == 0
    assert c.counters.gap_trades_filled == 29_997

"""Every class of malformed message, on a real loopback WebSocket, through the live path's real
workers (harvester → Redis streams → lander → landing zone, on a real redis-server).

The exchange simulator corrupts real outgoing messages with every kind of a class (malformed.py);
the worker must leave exactly the dead letter each kind calls for (matched by the injection tag in
the dead letter's frame head), land every valid message exactly once — the trades a corrupted
copy replaced come back through the REST backfill — and keep the connection. The memory of a
huge id jump is measured on the feed client alone, in-process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpha_assets.market.exchange_server import ExchangeServer, simulator_sources
from alpha_assets.market.injection import MalformedPlan, match_deadletters
from alpha_assets.market.malformed import CLASSES, KINDS
from tests.hostile.sut import (
    HUGE_BYTES,
    LARGE_BYTES,
    ClientUnderTest,
    FeedUnderTest,
    HarvesterUnderTest,
    Outcome,
    quiesce,
    wait_until,
)

SYMS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(scope="module")
def market() -> Iterator[ExchangeServer]:
    plan = MalformedPlan(large_bytes=LARGE_BYTES, huge_bytes=HUGE_BYTES)
    srv = ExchangeServer(simulator_sources(SYMS, seed=19, start_ms=int(time.time() * 1000)), tick_ms=50,
                         malformed=plan).start()
    try:
        yield srv
    finally:
        srv.stop()


def worker(root: Path, redis_url: str) -> HarvesterUnderTest:
    return HarvesterUnderTest(root, redis_url, run_id=f"cls{uuid.uuid4().hex[:12]}")


def run_kinds(market: ExchangeServer, kinds: list[str], sut: FeedUnderTest) -> tuple[Outcome, list[dict]]:
    market.resume()
    before = len(market.injected)
    sut.start(market, SYMS)
    assert wait_until(lambda: sut.messages() > 20, 20), "no market data reached the client"
    market.send_malformed(len(kinds), kinds)
    assert wait_until(lambda: len(market.injected) - before == len(kinds), 30), \
        f"only {len(market.injected) - before} of {len(kinds)} kinds were injected"
    seen = sut.messages()  # some market after the last injection, so a replaced last trade shows as a gap
    assert wait_until(lambda: sut.messages() > seen + 20, 20)
    quiesce(market, sut)
    return sut.stop(), market.injected[before:]


def check_trades_and_books(market: ExchangeServer, out: Outcome, record: list[dict]) -> None:
    for sym in SYMS:
        ids = out.trade_ids(sym)
        assert len(ids) == len(set(ids)), f"{sym}: a trade landed twice"
        got = sorted(ids)
        assert got == list(range(got[0], got[-1] + 1)), f"{sym}: trade ids not continuous"
        assert set(got) <= set(market.produced_trade_ids[sym]), f"{sym}: a trade the exchange never made"
        # the trades a corrupted copy replaced came back (REST backfill), the unusual valid ones landed
        for r in record:
            if r["symbol"] == sym and r["mode"] == "replace" and KINDS[r["kind"]].template == "trade":
                assert r["template_id"] in got, r
        us = [b["last_update_id"] for b in out.books if b["symbol"] == sym]
        assert len(us) == len(set(us)) and us == sorted(us), f"{sym}: books doubled or out of order"
        assert all(b["bid_px_1"] < b["ask_px_1"] for b in out.books)


@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_every_kind_of_a_class_is_dead_lettered_or_lands(market: ExchangeServer, cls: str, tmp_path: Path,
                                                        redis_url: str) -> None:
    kinds = [k for k in CLASSES[cls] if KINDS[k].outcome != "resync"]
    out, record = run_kinds(market, kinds, worker(tmp_path, redis_url))
    assert sorted(r["kind"] for r in record) == sorted(kinds)
    rep = match_deadletters(record, out.deadletters)
    assert rep.ok, rep.summary()
    assert rep.matched == sum(KINDS[k].outcome == "dead" for k in kinds)
    check_trades_and_books(market, out, record)
    c = out.counters
    # in band: no kind costs the connection, loses a trade or leaves a gap
    assert c["reconnect_count"] == 0 and c["gap_trades_unfilled"] == 0 and c["queue_dropped"] == 0
    assert c["gap_trades_filled"] >= sum(r["mode"] == "replace" and r["outcome"] == "dead" for r in record)
    assert c["deadletter"] == len(out.deadletters) == c["deadletter_landed"]
    assert c["unlandable_rows"] == 0 and c["land_failures"] == 0


def test_a_frame_over_the_connection_limit_is_counted_dead_lettered_and_resynced(
        market: ExchangeServer, tmp_path: Path, redis_url: str) -> None:
    out, record = run_kinds(market, ["oversize_disconnect", "invalid_utf8", "oversize_frame"],
                            worker(tmp_path, redis_url))
    rep = match_deadletters(record, out.deadletters)
    assert rep.ok, rep.summary()
    c = out.counters
    assert c["oversize_disconnects"] == 1 and c["reconnect_count"] == 1
    (dl,) = [d for d in out.deadletters if d["reason"] == "frame_too_large" and "limit" in d["payload"]]
    assert str(256 << 10) in dl["payload"]
    # what the exchange produced while the client reconnected came back over REST: nothing lost
    check_trades_and_books(market, out, record)
    assert c["gap_trades_unfilled"] == 0 and c["trade_gaps"] >= 1


def test_a_huge_id_jump_costs_no_memory(market: ExchangeServer) -> None:
    import tracemalloc

    tracemalloc.start()
    try:
        out, record = run_kinds(market, ["id_jump_2_62", "id_jump_million", "book_update_id_jump_million"],
                                ClientUnderTest())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert match_deadletters(record, out.deadletters).ok
    assert out.internals["gaps"] <= 1 and out.internals["fragments"] <= 2
    assert peak < 64 << 20, f"peak traced memory {peak / 2**20:.1f} MiB"
    check_trades_and_books(market, out, record)

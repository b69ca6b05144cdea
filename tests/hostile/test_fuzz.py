"""Property: malformed and valid Binance messages interleaved, through a real loopback exchange,
into the system under test (the client alone, or the harvest worker and its landing zone).

Hypothesis draws a market (trades and 5-level books of one symbol, ids and prices) and a schedule
of malformed kinds by message position. Afterwards:
* every valid message was kept exactly once, unchanged (a trade a corrupted copy replaced came
  back through the gap backfill);
* every malformed one left the dead letter its kind calls for (found by its tag), every dead
  letter is explained by an injection, and no gap stayed unfilled;
* nothing crashed, and memory stayed bounded (traced peak; gap, ledger and hold structures
  within their bounds even with 2^62 id jumps in the mix).
The harvester case runs the live path's real workers (harvest → Redis streams → lander) on a
real redis-server.
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpha_assets.market.exchange_server import ExchangeServer, ReplaySource
from alpha_assets.market.injection import MalformedPlan, match_deadletters
from alpha_assets.market.malformed import IN_BAND
from alpha_assets.market.schema import BOOK_SCHEMA, LEVELS, TRADE_SCHEMA, empty
from tests.hostile.sut import (
    HUGE_BYTES,
    LARGE_BYTES,
    ClientUnderTest,
    FeedUnderTest,
    HarvesterUnderTest,
    quiesce,
    wait_until,
)

SYM, OTHER = "BTCUSDT", "ETHUSDT"
TAIL = 6  # valid trades at the end, never corrupted: a replaced last trade still shows as a gap
EXAMPLES = {"client": 15, "harvester": 5}


class Silent:
    """A market with nothing to say (the other symbol, and ours until the script starts)."""

    def advance_to(self, t_ms: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        return empty(TRADE_SCHEMA), empty(BOOK_SCHEMA)


@dataclass
class Script:
    trades: list[dict[str, Any]]  # event_time_ms relative to the start
    books: list[dict[str, Any]]
    schedule: dict[int, str]

    def frames(self, t0: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        tr = [dict(r, event_time_ms=r["event_time_ms"] + t0, trade_time_ms=r["event_time_ms"] + t0) for r in self.trades]
        bk = [dict(r, event_time_ms=r["event_time_ms"] + t0) for r in self.books]
        return pl.DataFrame(tr, schema=TRADE_SCHEMA, orient="row"), pl.DataFrame(bk, schema=BOOK_SCHEMA, orient="row")


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    n_trades = draw(st.integers(8, 40))
    base_id = draw(st.integers(1, 2**40))
    tick = draw(st.sampled_from([0.01, 0.1, 0.5]))
    mid = draw(st.integers(2_000, 200_000)) * tick
    t, trades = 0, []
    for i in range(n_trades + TAIL):
        t += draw(st.integers(1, 30))
        trades.append({"symbol": SYM, "event_time_ms": t, "recv_time_ms": None, "agg_trade_id": base_id + i,
                       "price": round(mid + draw(st.integers(-20, 20)) * tick, 8),
                       "qty": draw(st.integers(1, 5_000)) / 1000, "is_buyer_maker": draw(st.booleans())})
    books, u = [], draw(st.integers(1_000, 2**50))
    n_books = draw(st.integers(2, 12))
    for k in range(n_books):
        nb, na = draw(st.integers(1, LEVELS)), draw(st.integers(1, LEVELS))
        first, u = u + 1, u + draw(st.integers(1, 400))
        # books between the first trade and the tail, so the tail trades are the last messages
        at = trades[k * n_trades // n_books]["event_time_ms"] + 1
        row: dict[str, Any] = {"symbol": SYM, "event_time_ms": at, "recv_time_ms": None,
                               "first_update_id": first, "last_update_id": u, "prev_last_update_id": first - 1}
        for i in range(LEVELS):
            row[f"bid_px_{i + 1}"] = round(mid - (i + 1) * tick, 8) if i < nb else None
            row[f"bid_qty_{i + 1}"] = (i + 1) * 1.5 if i < nb else None
            row[f"ask_px_{i + 1}"] = round(mid + (i + 1) * tick, 8) if i < na else None
            row[f"ask_qty_{i + 1}"] = (i + 1) * 2.5 if i < na else None
        books.append(row)
    n = n_trades + len(books)
    schedule = draw(st.dictionaries(st.integers(1, n - 1), st.sampled_from(IN_BAND), max_size=min(15, n // 2)))
    return Script(trades, books, schedule)


def run_script(script: Script, sut: FeedUnderTest) -> tuple[Any, ExchangeServer, int]:
    plan = MalformedPlan(large_bytes=LARGE_BYTES, huge_bytes=HUGE_BYTES, schedule=script.schedule)
    server = ExchangeServer({SYM: Silent(), OTHER: Silent()}, tick_ms=20, malformed=plan).start()
    try:
        sut.start(server, [SYM, OTHER])
        assert wait_until(lambda: server.connection_count() == 1, 20), "no connection"
        t0 = int(time.time() * 1000) + 100
        trades, book = script.frames(t0)
        first = min(int(trades["event_time_ms"].min()), int(book["event_time_ms"].min()))
        server.sources[SYM] = ReplaySource(trades, book, start_ms=first)  # served at the script's own times
        end = int(trades["event_time_ms"].max()) + 200
        assert wait_until(lambda: int(time.time() * 1000) > end and sut.messages() > 0, 30)
        quiesce(server, sut)
        return sut.stop(), server, t0
    finally:
        server.stop()


def check(script: Script, out: Any, server: ExchangeServer, t0: int) -> None:
    rep = match_deadletters(server.injected, out.deadletters)
    assert rep.ok, rep.summary()
    got = {}
    for r in out.trades:
        assert r["agg_trade_id"] not in got, f"trade {r['agg_trade_id']} kept twice"
        got[r["agg_trade_id"]] = r
    for r in script.trades:
        g = got.pop(r["agg_trade_id"], None)
        assert g is not None, f"valid trade {r['agg_trade_id']} lost"
        assert (g["price"], g["qty"], g["is_buyer_maker"], g["event_time_ms"]) == (
            r["price"], r["qty"], r["is_buyer_maker"], r["event_time_ms"] + t0), g
    assert not got, f"trades that were never valid were kept: {sorted(got)[:5]}"
    books = {}
    for b in out.books:
        assert b["last_update_id"] not in books, "a book kept twice"
        books[b["last_update_id"]] = b
    for b in script.books:
        g = books.pop(b["last_update_id"], None)
        assert g is not None, f"valid book {b['last_update_id']} lost"
        assert all(g[f"{s}_px_{i}"] == b[f"{s}_px_{i}"] for s in ("bid", "ask") for i in range(1, LEVELS + 1))
    assert not books, "books that were never valid were kept"
    assert out.counters.get("gap_trades_unfilled", 0) == 0 and out.counters.get("queue_dropped", 0) == 0


FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck),
                derandomize=os.environ.get("CI", "").lower() == "true")


@settings(FUZZ, max_examples=EXAMPLES["client"])
@given(scripts())
def test_client_keeps_every_valid_message_once_and_dead_letters_every_malformed_one(script: Script) -> None:
    sut = ClientUnderTest()
    tracemalloc.start()
    try:
        out, server, t0 = run_script(script, sut)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    check(script, out, server, t0)
    assert peak < 64 << 20, f"traced peak {peak / 2**20:.1f} MiB"
    cfg = sut.client.cfg
    assert out.internals["gaps"] <= cfg.max_open_gaps and out.internals["fragments"] <= cfg.max_ledger_fragments
    assert out.internals["held"] <= 2 and out.internals["pending"] == 0


@settings(FUZZ, max_examples=EXAMPLES["harvester"])
@given(scripts())
def test_harvester_lands_every_valid_message_once_and_dead_letters_every_malformed_one(
        redis_url: str, script: Script) -> None:
    """Through the live path: harvester → Redis streams → lander → landing zone."""
    with tempfile.TemporaryDirectory() as tmp:
        sut = HarvesterUnderTest(Path(tmp), redis_url, run_id=f"fuzz{uuid.uuid4().hex[:12]}")
        tracemalloc.start()
        try:
            out, server, t0 = run_script(script, sut)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        check(script, out, server, t0)
        c = out.counters
        assert c["unlandable_rows"] == 0 and c["land_failures"] == 0 and c["spilled_rows"] == 0
        assert c["bus_pending"] == 0 and c["buffered_entries"] == 0  # everything written, landed and acked
        assert peak < 64 << 20, f"traced peak {peak / 2**20:.1f} MiB"
        bounds = c["bounds_in_use"]
        assert bounds["gaps"] == 0 and bounds["held"] == 0 and bounds["pending"] == 0


@pytest.mark.parametrize("kind", ["id_jump_2_62", "oversize_frame", "deep_nesting", "duplicate_key_price_nan"])
def test_one_example_per_heavy_kind(kind: str) -> None:
    """The heaviest kinds, always, whatever Hypothesis draws (cheap: one small script each)."""
    trades = [{"symbol": SYM, "event_time_ms": 10 * i, "recv_time_ms": None, "agg_trade_id": 7 + i, "price": 100.5,
               "qty": 1.0, "is_buyer_maker": bool(i % 2)} for i in range(12)]
    book = {"symbol": SYM, "event_time_ms": 3, "recv_time_ms": None, "first_update_id": 50, "last_update_id": 60,
            "prev_last_update_id": 49, **{f"{s}_{w}_{i}": None for s in ("bid", "ask") for w in ("px", "qty")
                                          for i in range(2, LEVELS + 1)},
            "bid_px_1": 100.4, "bid_qty_1": 1.0, "ask_px_1": 100.6, "ask_qty_1": 2.0}
    script = Script(trades, [book], {3: kind})
    sut = ClientUnderTest()
    out, server, t0 = run_script(script, sut)
    assert [r["kind"] for r in server.injected] == [kind]
    check(script, out, server, t0)

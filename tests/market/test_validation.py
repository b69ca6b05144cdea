"""Stream-first validation, strict fields, the id ledger and id continuity — without a socket."""

from __future__ import annotations

import json
import tracemalloc

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpha_assets.market.binance import ParseError, combined, dumps
from alpha_assets.market.fields import loads
from alpha_assets.market.id_ledger import IdLedger, gap_deadletter, gap_range
from alpha_assets.market.schema import DEADLETTER_HEAD_CHARS, DEADLETTER_SCHEMA
from alpha_assets.market.validation import Accepted, MessageValidator, Rejected, ValidationConfig
from alpha_assets.market.ws_client import MarketWsClient, WsClientConfig

NOW = 1_723_161_256_000
STREAMS = ["btcusdt@aggTrade", "btcusdt@depth5@100ms", "ethusdt@aggTrade"]


def trade(a: int = 100, t: int = NOW, **kw: object) -> dict:
    return {"e": "aggTrade", "E": t, "a": a, "s": "BTCUSDT", "p": "61800.30", "q": "0.006", "f": a, "l": a,
            "T": t - 1, "m": True, **kw}


def book(u: int = 1000, t: int = NOW, **kw: object) -> dict:
    return {"e": "depthUpdate", "E": t, "T": t, "s": "BTCUSDT", "U": u - 5, "u": u, "pu": u - 6,
            "b": [["100.2", "1"], ["100.1", "2"]], "a": [["100.3", "1"], ["100.4", "3"]], **kw}


def frame(stream: str, data: dict) -> bytes:
    return dumps(combined(stream, data))


def check(raw: bytes, recv: int = NOW + 5, v: MessageValidator | None = None) -> Accepted | Rejected | None:
    return (v or MessageValidator(STREAMS)).validate(raw, recv)


def reason(raw: bytes, **kw: object) -> str:
    out = check(raw, **kw)  # type: ignore[arg-type]
    assert isinstance(out, Rejected), out
    return out.reason


# ---------------------------------------------------------------- strict JSON and numbers


def test_duplicate_keys_are_found_on_the_fast_and_the_slow_path() -> None:
    assert loads(b'{"a":1,"b":{"c":2}}') == {"a": 1, "b": {"c": 2}}
    for raw in (b'{"p":"NaN","p":"1.0"}', b'{"p" : "NaN", "p":"1.0"}', b'{"d":{"x":1,"x":2}}',
                b'{"s":"a\\"b","s":"c"}', b'[{"k":1,"k":1}]'):
        with pytest.raises(ParseError, match="duplicate_key"):
            loads(raw)
    # whitespace and escapes alone are not duplicates (slow path, same answer)
    assert loads(b'{ "a" : 1 , "b" : "x\\u0040y" }') == {"a": 1, "b": "x@y"}


def test_invalid_utf8_is_its_own_reason() -> None:
    with pytest.raises(ParseError, match="bad_utf8"):
        loads(b'{"s":"\xff"}')
    with pytest.raises(ParseError, match="bad_json"):
        loads(b'{"s":')


@pytest.mark.parametrize(("value", "why"), [
    ("65_012.3", "bad_number:p"), ("6.5e4", "bad_number:p"), ("NaN", "bad_number:p"), ("inf", "bad_number:p"),
    (" 1.0", "bad_number:p"), ("６５", "bad_number:p"), ("+1", "bad_number:p"), ("1.", "bad_number:p"),
    (65012.3, "bad_number:p"), ("0", "bad_value:p"), ("-2.5", "bad_value:p"), ("1" + "0" * 400, "bad_number:p"),
])
def test_prices_are_decimal_strings_only(value: object, why: str) -> None:
    assert reason(frame("btcusdt@aggTrade", trade(p=value))) == why


@pytest.mark.parametrize(("field", "value", "why"), [
    ("a", "100", "bad_number:a"), ("a", 100.0, "bad_number:a"), ("a", -1, "bad_value:a"), ("a", True, "bad_number:a"),
    ("a", 2**63, "bad_number:a"), ("E", 2**63 + 1, "bad_number:E"), ("E", float(NOW), "bad_number:E"),
    ("E", -1, "bad_time:E"),
])
def test_ids_and_times_are_int64_json_integers(field: str, value: object, why: str) -> None:
    assert reason(frame("btcusdt@aggTrade", trade(**{field: value}))) == why


# ---------------------------------------------------------------- routing by stream


def test_the_stream_decides_the_kind_not_the_shape() -> None:
    # a valid trade that merely carries snapshot/ack fields is a trade
    ok = check(frame("btcusdt@aggTrade", trade(lastUpdateId=5, result=None, id=3)))
    assert isinstance(ok, Accepted) and ok.kind == "trade" and ok.row["agg_trade_id"] == 100
    assert reason(frame("btcusdt@aggTrade", {"lastUpdateId": 5, "bids": [], "asks": []})) == "missing_field:e"
    assert reason(frame("btcusdt@aggTrade", {"result": None, "id": 1})) == "missing_field:e"
    assert reason(frame("btcusdt@aggTrade", book())) == "wrong_event"
    assert reason(frame("btcusdt@depth5@100ms", trade())) == "wrong_event"
    assert reason(frame("btcusdt@aggTrade", trade(s="ETHUSDT"))) == "symbol_mismatch"
    assert reason(frame("btcusdt@aggTrade", trade(s="BTCUSDT "))) == "symbol_mismatch"
    assert reason(frame("dogeusdt@aggTrade", trade(s="DOGEUSDT"))) == "unsubscribed_stream"
    assert reason(dumps(trade())) == "no_stream"
    assert check(b'{"result":null,"id":1}') is None  # a subscription ack outside any stream


def test_dead_letter_keeps_symbol_as_received_stream_receive_time_and_a_bounded_head() -> None:
    raw = frame("dogeusdt@aggTrade", trade(s="DOGEUSDT ", pad="x" * 50_000))
    out = check(raw, recv=NOW + 7)
    assert isinstance(out, Rejected)
    d = out.deadletter
    assert set(d) == set(DEADLETTER_SCHEMA)
    assert (d["symbol"], d["stream"], d["recv_time_ms"], d["reason"]) == ("DOGEUSDT ", "dogeusdt@aggTrade", NOW + 7,
                                                                          "unsubscribed_stream")
    assert len(d["payload"]) == DEADLETTER_HEAD_CHARS and raw.decode().startswith(d["payload"])
    big = check(b'{"x":"' + b"y" * (2 << 20) + b'"}')
    assert isinstance(big, Rejected) and big.reason == "frame_too_large"


# ---------------------------------------------------------------- plausible times


@pytest.mark.parametrize(("event", "trade_time", "why"), [
    (0, 0, "bad_time:E"), (1000, 1000, "bad_time:E"), (7_258_118_400_000, 7_258_118_400_000, "bad_time:E"),
    (10**16, 10**16, "bad_time:E"), (NOW + 3_600_000, NOW, "bad_time:E"), (NOW - 86_400_000, NOW, "bad_time:E"),
    (NOW, 0, "bad_time:T"), (NOW, NOW + 60_000, "bad_time:T"),
])
def test_times_must_be_plausible_around_the_receive_clock(event: int, trade_time: int, why: str) -> None:
    assert reason(frame("btcusdt@aggTrade", trade(E=event, T=trade_time))) == why


def test_times_are_monotone_per_stream_and_a_future_message_cannot_poison_the_reference() -> None:
    v = MessageValidator(STREAMS, ValidationConfig(max_lead_ms=10_000, max_backwards_ms=5_000))
    assert isinstance(check(frame("btcusdt@aggTrade", trade(1, NOW)), NOW + 5, v), Accepted)
    # 9 s ahead: inside the lead, accepted, but the reference is min(E, recv) = the receive time
    assert isinstance(check(frame("btcusdt@aggTrade", trade(2, NOW + 9_000)), NOW + 10, v), Accepted)
    assert isinstance(check(frame("btcusdt@aggTrade", trade(3, NOW + 20)), NOW + 25, v), Accepted)
    out = check(frame("btcusdt@aggTrade", trade(4, NOW - 60_000, T=NOW - 60_000)), NOW + 30, v)
    assert isinstance(out, Rejected) and out.reason == "non_monotone_time:E"
    # other streams have their own reference
    assert isinstance(check(frame("ethusdt@aggTrade", trade(9, NOW - 60_000, s="ETHUSDT", T=NOW - 60_000)),
                            NOW + 30, v), Accepted)


def test_real_capture_times_are_inside_the_default_window() -> None:
    """Exchange time runs ~1.3 s ahead of the capture's receive clock: valid, not 'future'."""
    v = MessageValidator(["btcusdt@trade"])
    raw = frame("btcusdt@trade", {"e": "trade", "E": NOW + 1_270, "T": NOW + 1_269, "s": "BTCUSDT", "t": 5,
                                  "p": "61800.30", "q": "0.006", "X": "MARKET", "m": False})
    assert isinstance(v.validate(raw, NOW), Accepted)


# ---------------------------------------------------------------- books


@pytest.mark.parametrize(("b", "a", "why"), [
    ([], [], "empty_book:b"), ([["100.2", "1"]], [], "empty_book:a"),
    ([["100.2", "1"], ["100.2", "2"]], [["100.3", "1"]], "duplicate_level:b"),
    ([["100.1", "1"], ["100.2", "2"]], [["100.3", "1"]], "unsorted_levels:b"),
    ([["100.2", "1"]], [["100.4", "1"], ["100.3", "2"]], "unsorted_levels:a"),
    ([["100.3", "1"]], [["100.3", "1"]], "crossed_book"), ([["100.5", "1"]], [["100.3", "1"]], "crossed_book"),
    ([["100.2", "0"]], [["100.3", "1"]], "bad_value:b"), ([["-1", "1"]], [["100.3", "1"]], "bad_value:b"),
    ([["100.2", "1", "x"]], [["100.3", "1"]], "bad_levels:b"),
    ([[f"{100 - i}.0", "1"] for i in range(6)], [["100.3", "1"]], "too_many_levels:b"),
])
def test_partial_books_must_be_books(b: list, a: list, why: str) -> None:
    assert reason(frame("btcusdt@depth5@100ms", book(b=b, a=a))) == why


# ---------------------------------------------------------------- the id ledger


def test_ledger_is_a_prefix_plus_ranges() -> None:
    lg = IdLedger()
    for i in (5, 6, 9, 10, 7):
        assert lg.add(i)
    assert not lg.add(6) and lg.prefix == 7 and lg.ranges() == [(9, 10)] and lg.holes() == [(8, 8)]
    lg.add_range(8, 8)
    assert lg.prefix == 10 and lg.ranges() == [] and 3 in lg and 11 not in lg
    lg.add(2**62)
    assert lg.holes() == [(11, 2**62 - 1)] and lg.missing() == 2**62 - 11 and lg.fragments() == 1
    back = IdLedger.from_json(json.loads(json.dumps(lg.to_json())))
    assert back.prefix == 10 and back.ranges() == [(2**62, 2**62)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=200), st.lists(st.tuples(st.integers(0, 300), st.integers(0, 20)), max_size=10))
def test_ledger_matches_a_set(ids: list[int], ranges: list[tuple[int, int]]) -> None:
    """The ledger holds what was added, and everything below the first id it was given."""
    lg, ref, first = IdLedger(), set(), None
    for i in ids:
        assert lg.add(i) == (i not in ref and (first is None or i >= first))
        ref.add(i)
        first = i if first is None else first
    for lo, n in ranges if first is not None else []:
        lg.add_range(lo, lo + n)
        ref |= set(range(lo, lo + n + 1))
    if first is not None:
        for i in range(0, 330):
            assert (i in lg) == (i in ref or i < first), i
        assert lg.head == max(ref) and lg.missing() == sum(b - a + 1 for a, b in lg.holes())


def test_gap_dead_letter_round_trip() -> None:
    d = gap_deadletter("BTCUSDT", 4, 9, stream="btcusdt@aggTrade", recv_time_ms=NOW, open_at_stop=True)
    assert d["reason"] == "id_gap" and d["key"] == "4-9" and gap_range(d) == (4, 9, False)
    assert gap_range(gap_deadletter("BTCUSDT", 4, 9, stream=None, recv_time_ms=None)) == (4, 9, True)


# ---------------------------------------------------------------- continuity in the client (no socket)


def client(**kw: object) -> MarketWsClient:
    url = "ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade/btcusdt@depth5@100ms"
    return MarketWsClient(WsClientConfig(url=url, backfill=False, gap_grace_s=0, **kw))  # type: ignore[arg-type]


def items(c: MarketWsClient, kind: str) -> list[dict]:
    return [r for k, r in c.drain() if k == kind]


def test_a_bogus_million_jump_is_dead_lettered_and_takes_no_valid_trade_with_it() -> None:
    c = client()
    for a in (1, 2):
        c.handle(frame("btcusdt@aggTrade", trade(a)), NOW + 5)
    c.handle(frame("btcusdt@aggTrade", trade(1_000_002)), NOW + 5)
    for a in (3, 4, 5):
        c.handle(frame("btcusdt@aggTrade", trade(a)), NOW + 5)
    out = c.drain()
    assert [r["agg_trade_id"] for k, r in out if k == "trade"] == [1, 2, 3, 4, 5]
    assert [(r["reason"], r["key"]) for k, r in out if k == "deadletter"] == [("id_jump", "1000002")]
    assert c.counters.duplicates == 0 and c.open_gaps() == 0


def test_a_confirmed_jump_is_a_counted_resync_not_a_million_row_gap() -> None:
    c = client(max_trade_id_jump=1000)
    tracemalloc.start()
    for a in (1, 2, 2**62, 2**62 + 1, 2**62 + 2):
        c.handle(frame("btcusdt@aggTrade", trade(a)), NOW + 5)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out = c.drain()
    assert [r["agg_trade_id"] for k, r in out if k == "trade"] == [1, 2, 2**62, 2**62 + 1, 2**62 + 2]
    (gap,) = [r for k, r in out if k == "deadletter"]
    assert gap["reason"] == "id_gap" and gap_range(gap) == (3, 2**62 - 1, True)
    assert c.counters.resyncs == 1 and c.open_gaps() == 0 and peak < 5 << 20
    assert c.ledger("BTCUSDT").prefix == 2**62 + 2  # the given-up range counts as accounted


def test_book_update_id_jump_and_chain_break() -> None:
    c = client()
    c.handle(frame("btcusdt@depth5@100ms", book(1000)), NOW + 5)
    c.handle(frame("btcusdt@depth5@100ms", book(1_001_000, U=1_000_995, pu=1000)), NOW + 5)  # bogus jump
    c.handle(frame("btcusdt@depth5@100ms", book(1010, U=1001, pu=1000)), NOW + 5)
    c.handle(frame("btcusdt@depth5@100ms", book(1020, U=1011, pu=1007)), NOW + 5)  # chain break, same u as next
    c.handle(frame("btcusdt@depth5@100ms", book(1020, U=1011, pu=1010)), NOW + 5)
    c.handle(frame("btcusdt@depth5@100ms", book(2000, U=1991, pu=1990)), NOW + 5)  # a real reconnect gap ...
    c.handle(frame("btcusdt@depth5@100ms", book(2010, U=2001, pu=2000)), NOW + 5)  # ... confirmed by the next
    c.close()
    out = c.drain()
    assert [r["last_update_id"] for k, r in out if k == "book"] == [1000, 1010, 1020, 2000, 2010]
    assert [r["reason"] for k, r in out if k == "deadletter"] == ["id_jump", "id_jump"]
    assert c.counters.book_gaps == 1


def test_gap_open_at_stop_is_reported_and_stays_a_hole() -> None:
    c = client(backfill_attempts=3)
    for a in (1, 2, 5):
        c.handle(frame("btcusdt@aggTrade", trade(a)), NOW + 5)
    c.close()
    dead = items(c, "deadletter")
    assert [(d["reason"], gap_range(d)) for d in dead] == [("id_gap", (3, 4, False))]
    assert c.ledger("BTCUSDT").holes() == [(3, 4)]


def test_queue_full_trades_come_back_as_a_gap() -> None:
    c = client(queue_max=2)
    for a in (1, 2, 3):
        c.handle(frame("btcusdt@aggTrade", trade(a)), NOW + 5)
    assert c.counters.queue_dropped == 1 and [r["agg_trade_id"] for _, r in c.drain()] == [1, 2]
    c.handle(frame("btcusdt@aggTrade", trade(4)), NOW + 5)
    assert c.open_gaps("BTCUSDT") == 1 and c.counters.trade_gaps == 1  # id 3 will be backfilled


def test_seed_resumes_from_the_contiguous_prefix_and_backfills_its_holes() -> None:
    c = client()
    c.seed("BTCUSDT", None, ledger=IdLedger(10, [(13, 20)]))
    assert c.open_gaps("BTCUSDT") == 2  # 11 and 12
    c.handle(frame("btcusdt@aggTrade", trade(15)), NOW + 5)  # landed before the restart: a duplicate
    c.handle(frame("btcusdt@aggTrade", trade(12)), NOW + 5)  # a hole: filled
    c.handle(frame("btcusdt@aggTrade", trade(21)), NOW + 5)
    out = c.drain()
    assert [r["agg_trade_id"] for k, r in out if k == "trade"] == [12, 21]
    assert [r["reason"] for k, r in out if k == "deadletter"] == ["duplicate"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_frame_gives_one_outcome_and_never_raises(raw: bytes) -> None:
    c = client()
    c.handle(raw, NOW)
    c.handle(raw.decode("latin-1"), NOW)
    out = c.drain()
    assert len(out) + c.counters.acks == 2 and all(k == "deadletter" for k, _ in out)
    assert all(set(r) == set(DEADLETTER_SCHEMA) and r["reason"] for _, r in out)


def test_the_common_path_never_parses_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid compact frames pass the duplicate-key check on its fast path (no second parse)."""
    import alpha_assets.market.fields as fields

    calls = []
    monkeypatch.setattr(fields.json, "loads", lambda *a, **k: calls.append(1))
    v = MessageValidator(STREAMS)
    for i in range(50):
        assert isinstance(v.validate(orjson.dumps(combined("btcusdt@depth5@100ms", book(1000 + i))), NOW + 5), Accepted)
        assert isinstance(v.validate(orjson.dumps(combined("btcusdt@aggTrade", trade(i))), NOW + 5), Accepted)
    assert calls == []

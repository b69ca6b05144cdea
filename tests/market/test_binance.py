"""Binance message parsing, encoding round trips, and the diff-depth book builder."""

from __future__ import annotations

import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpha_assets.market.binance import (
    BOOK_SCHEMA,
    TRADES_SCHEMA,
    DepthDiff,
    DepthSnapshot,
    DiffBookBuilder,
    ParseError,
    combined,
    dumps,
    encode_agg_trade,
    encode_depth5,
    parse_book_ticker,
    parse_message,
    parse_partial_depth,
    parse_snapshot,
    parse_trade,
    unwrap,
)
from alpha_assets.market.schema import INGEST_SEQ

AGG = {
    "e": "aggTrade", "E": 1723161256322, "a": 26129, "s": "BTCUSDT", "p": "61800.30", "q": "0.006",
    "f": 100, "l": 105, "T": 1723161256321, "m": True,
}
TRADE = {
    "e": "trade", "E": 1723161256322, "T": 1723161256322, "s": "BTCUSDT", "t": 5266583935,
    "p": "61800.30", "q": "0.006", "X": "MARKET", "m": False,
}
DEPTH5 = {
    "e": "depthUpdate", "E": 1723161256400, "T": 1723161256398, "s": "ETHUSDT", "U": 10, "u": 15, "pu": 9,
    "b": [["2500.10", "1.5"], ["2500.00", "2"], ["2499.90", "3"], ["2499.80", "4"], ["2499.70", "5"]],
    "a": [["2500.20", "1"], ["2500.30", "2"], ["2500.40", "3"], ["2500.50", "4"], ["2500.60", "5"]],
}
TICKER = {
    "e": "bookTicker", "u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21",
    "a": "25.36520000", "A": "40.66", "T": 1568014460891, "E": 1568014460893,
}


def test_agg_trade_fields() -> None:
    row = parse_trade(AGG, recv_time_ms=1723161257000)
    assert row == {
        "symbol": "BTCUSDT", "event_time_ms": 1723161256322, "trade_time_ms": 1723161256321,
        "recv_time_ms": 1723161257000, "agg_trade_id": 26129, "price": 61800.30, "qty": 0.006,
        "is_buyer_maker": True,
    }
    assert set(row) == set(TRADES_SCHEMA) - {INGEST_SEQ}  # the harvester stamps the arrival counter


def test_raw_trade_uses_t_as_id() -> None:
    row = parse_trade(TRADE)
    assert row["agg_trade_id"] == 5266583935
    assert row["is_buyer_maker"] is False
    assert row["recv_time_ms"] is None


@pytest.mark.parametrize("kind", ["INSURANCE_FUND", "ADL", "NA"])
def test_non_market_raw_trade_is_a_parse_error(kind: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_trade({**TRADE, "X": kind})
    assert err.value.reason == "non_market_trade"
    assert parse_trade({k: v for k, v in TRADE.items() if k != "X"})["agg_trade_id"] == TRADE["t"]


def test_combined_envelope_and_dispatch() -> None:
    raw = dumps(combined("btcusdt@aggTrade", AGG))
    stream, data = unwrap(raw)
    assert stream == "btcusdt@aggTrade" and data == AGG
    parsed = parse_message(raw, recv_time_ms=5)
    assert parsed.kind == "trade" and parsed.stream == "btcusdt@aggTrade"
    assert parsed.value["agg_trade_id"] == 26129 and parsed.value["recv_time_ms"] == 5
    assert parse_message(orjson.dumps(TICKER)).kind == "book_ticker"
    assert parse_message(orjson.dumps(DEPTH5)).kind == "depth"
    assert parse_message(b'{"result": null, "id": 1}').kind == "ignored"
    snap = parse_message(b'{"lastUpdateId": 7, "bids": [["1.0", "2"]], "asks": [["1.1", "3"]]}')
    assert snap.kind == "snapshot" and snap.value.last_update_id == 7


def test_partial_depth_row() -> None:
    row = parse_partial_depth(DEPTH5, recv_time_ms=1723161257600)
    assert set(row) == set(BOOK_SCHEMA) - {INGEST_SEQ}
    assert (row["first_update_id"], row["last_update_id"], row["prev_last_update_id"]) == (10, 15, 9)
    assert row["bid_px_1"] == 2500.10 and row["bid_qty_1"] == 1.5
    assert row["ask_px_5"] == 2500.60 and row["ask_qty_5"] == 5.0
    assert row["event_time_ms"] == 1723161256400 and row["recv_time_ms"] == 1723161257600


def test_partial_depth_short_book_is_null_padded() -> None:
    msg = dict(DEPTH5, b=DEPTH5["b"][:2], a=DEPTH5["a"][:1])
    row = parse_partial_depth(msg)
    assert row["bid_px_2"] == 2500.0 and row["bid_px_3"] is None and row["bid_qty_3"] is None
    assert row["ask_px_2"] is None


def test_book_ticker() -> None:
    row = parse_book_ticker(TICKER, recv_time_ms=1)
    assert row["update_id"] == 400900217 and row["event_time_ms"] == 1568014460893
    assert (row["bid_px"], row["bid_qty"], row["ask_px"], row["ask_qty"]) == (25.3519, 31.21, 25.3652, 40.66)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "not_object"),
        (dumps({k: v for k, v in AGG.items() if k != "p"}), "missing_field:p"),
        (dumps(dict(AGG, q="abc")), "bad_number:q"),
        (dumps(dict(AGG, q="NaN")), "bad_number:q"),
        (dumps(dict(AGG, p="-1")), "bad_value:p"),
        (dumps(dict(AGG, E="soon")), "bad_number:E"),
        (dumps(dict(AGG, a=True)), "bad_number:a"),
        (dumps(dict(AGG, m="yes")), "bad_value:m"),
        (dumps(dict(AGG, e="kline")), "unknown_event"),
        (dumps({"stream": "x", "data": [1]}), "bad_envelope"),
        (dumps(dict(DEPTH5, b="oops")), "bad_levels:b"),
        (dumps(dict(DEPTH5, a=[["1.0"]])), "bad_levels:a"),
        (dumps(dict(DEPTH5, u=3)), "bad_value:u"),
        (dumps({k: v for k, v in TICKER.items() if k != "B"}), "missing_field:B"),
        (dumps({"lastUpdateId": 1, "bids": [], "asks": None}), "missing_field:asks"),
        (b"", "bad_json"),
        (dumps(dict(AGG, a="\u00b2")), "bad_number:a"),
        (dumps(dict(AGG, a="12x")), "bad_number:a"),
        (b'{"e": "aggTrade", "E": 1, "T": 1, "s": "X", "a": 1, "m": true, "q": "1", "p": 1e400}', "bad_json"),
        (dumps(dict(AGG, q="-5")), "bad_value:q"),
        (dumps(dict(TICKER, A="-1")), "bad_value:A"),
    ],
)
def test_malformed_input_gives_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(raw)
    assert info.value.reason == reason


def test_huge_integer_price_is_bad_number() -> None:
    with pytest.raises(ParseError) as info:
        parse_trade(dict(AGG, p=10**400))  # a Python int too large for a float
    assert info.value.reason == "bad_number:p"


def test_crossed_partial_book_rejected() -> None:
    msg = dict(DEPTH5, a=[["2500.00", "1"]])
    with pytest.raises(ParseError, match="crossed_book"):
        parse_partial_depth(msg)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_but_parse_error(raw: bytes) -> None:
    try:
        parse_message(raw)
    except ParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["e", "E", "T", "s", "a", "t", "p", "q", "m", "U", "u", "pu", "b", "a", "B", "A"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                  st.lists(st.lists(st.text(max_size=4), max_size=3), max_size=3)),
    ),
    st.sampled_from(["aggTrade", "trade", "depthUpdate", "bookTicker"]),
)
def test_wrong_typed_fields_only_parse_error(data: dict, event: str) -> None:
    data["e"] = event
    try:
        parse_message(data)
    except ParseError:
        pass


prices = st.decimals(min_value="0.01", max_value="200000", places=2).map(float)
qtys = st.decimals(min_value="0.001", max_value="1000", places=3).map(float)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 2**62), st.integers(1_500_000_000_000, 2_000_000_000_000), st.integers(0, 50),
    prices, qtys, st.booleans(),
)
def test_trade_round_trip(agg_id: int, t: int, lag: int, px: float, qty: float, maker: bool) -> None:
    row = {
        "symbol": "ETHUSDT", "event_time_ms": t + lag, "trade_time_ms": t, "recv_time_ms": None,
        "agg_trade_id": agg_id, "price": px, "qty": qty, "is_buyer_maker": maker,
    }
    raw = dumps(combined("ethusdt@aggTrade", encode_agg_trade(row)))
    assert parse_message(raw).value == row


@settings(max_examples=100, deadline=None)
@given(
    st.lists(prices, min_size=10, max_size=10, unique=True),
    st.lists(qtys, min_size=10, max_size=10),
    st.integers(1, 2**40),
    st.integers(0, 1000),
)
def test_depth5_round_trip(pxs: list[float], qs: list[float], first: int, span: int) -> None:
    pxs = sorted(pxs)
    bids = list(zip(reversed(pxs[:5]), qs[:5], strict=True))
    asks = list(zip(pxs[5:], qs[5:], strict=True))
    row = {
        "symbol": "BTCUSDT", "event_time_ms": 1_700_000_000_000, "recv_time_ms": None,
        "first_update_id": first, "last_update_id": first + span, "prev_last_update_id": first - 1,
    }
    for i in range(5):
        row[f"bid_px_{i + 1}"], row[f"bid_qty_{i + 1}"] = bids[i]
        row[f"ask_px_{i + 1}"], row[f"ask_qty_{i + 1}"] = asks[i]
    back = parse_partial_depth(orjson.loads(dumps(encode_depth5(row))))
    assert back == row
    # the frame built from such rows has the canonical schema
    assert pl.DataFrame([back], schema=BOOK_SCHEMA).schema == pl.Schema(BOOK_SCHEMA)


def test_encoded_numbers_have_no_exponent() -> None:
    row = {"symbol": "X", "event_time_ms": 1, "trade_time_ms": 1, "agg_trade_id": 1, "price": 1e-7,
           "qty": 123456789.0, "is_buyer_maker": False}
    msg = encode_agg_trade(row)
    assert msg["p"] == "0.0000001" and "e" not in msg["q"].lower()


# ---------------------------------------------------------------- DiffBookBuilder


def _diff(U: int, u: int, pu: int | None, bids=(), asks=(), E: int = 1000) -> DepthDiff:
    return DepthDiff("BTCUSDT", E, E, U, u, pu, list(bids), list(asks))


def _builder() -> DiffBookBuilder:
    b = DiffBookBuilder("BTCUSDT")
    b.load_snapshot(DepthSnapshot(100, [(10.0, 1.0), (9.0, 2.0), (8.0, 3.0)], [(11.0, 1.0), (12.0, 2.0)]))
    return b


def test_builder_sync_rules() -> None:
    b = DiffBookBuilder("BTCUSDT")
    assert b.apply(_diff(1, 2, 0)) == "waiting" and b.needs_resync
    b = _builder()
    assert b.apply(_diff(80, 95, 79, bids=[(10.0, 99.0)])) == "stale"
    assert b.best() == (10.0, 1.0, 11.0, 1.0)  # the stale diff was not applied
    assert b.apply(_diff(98, 105, 97, bids=[(10.0, 0.0)], asks=[(10.5, 4.0)])) == "applied"
    assert b.best() == (9.0, 2.0, 10.5, 4.0)  # qty 0 removes the level
    assert b.apply(_diff(106, 110, 105, bids=[(9.5, 1.5)])) == "applied"
    row = b.top(5)
    assert (row["first_update_id"], row["last_update_id"], row["prev_last_update_id"]) == (106, 110, 105)
    assert [row[f"bid_px_{i}"] for i in range(1, 6)] == [9.5, 9.0, 8.0, None, None]
    assert [row[f"ask_px_{i}"] for i in range(1, 6)] == [10.5, 11.0, 12.0, None, None]
    assert row["bid_qty_1"] == 1.5 and row["bid_qty_4"] is None


def test_builder_gap_requires_resync() -> None:
    b = _builder()
    assert b.apply(_diff(99, 101, 98)) == "applied"
    assert b.apply(_diff(103, 104, 102)) == "gap"
    assert b.needs_resync and b.gaps == 1
    assert b.apply(_diff(105, 106, 104)) == "waiting"
    b.load_snapshot(DepthSnapshot(105, [(10.0, 1.0)], [(11.0, 1.0)]))
    assert not b.needs_resync
    assert b.apply(_diff(105, 106, 104, asks=[(11.0, 7.0)])) == "applied"
    assert b.best() == (10.0, 1.0, 11.0, 7.0)


def test_builder_first_diff_must_bridge_snapshot() -> None:
    b = _builder()
    assert b.apply(_diff(120, 130, 119)) == "gap"
    assert b.needs_resync


def test_rest_snapshot_feeds_builder() -> None:
    snap = parse_snapshot({"lastUpdateId": 50, "E": 7, "T": 6, "bids": [["10.0", "1"], ["9.5", "0"]],
                           "asks": [["10.5", "2"]]})
    assert snap.last_update_id == 50 and snap.event_time_ms == 7
    b = DiffBookBuilder("BTCUSDT")
    b.load_snapshot(snap)
    assert b.best() == (10.0, 1.0, 10.5, 2.0)  # zero-qty snapshot levels are not kept

"""Binance USD-M futures WebSocket/REST messages <-> canonical rows.

Every parser raises `ParseError(reason)` on malformed input and nothing else, so a caller can
dead-letter the message with a short reason code ("bad_json", "missing_field:p", "bad_number:q").
Fields are parsed strictly (fields.py): decimal strings for prices and quantities, JSON integers
for ids and times, no repeated keys. The diff-depth book builder is in book_builder.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import polars as pl

from alpha_assets.market import fields as f
from alpha_assets.market.fields import ParseError as ParseError
from alpha_assets.market.fields import loads as loads

# the canonical tables and the dead-letter row are defined once, in schema.py; re-exported here
from alpha_assets.market.schema import BOOK_SCHEMA as BOOK_SCHEMA
from alpha_assets.market.schema import DEADLETTER_SCHEMA as DEADLETTER_SCHEMA
from alpha_assets.market.schema import LEVELS, TRADE_SCHEMA
from alpha_assets.market.schema import dead_letter as dead_letter
from alpha_assets.market.streams import stream_spec

TRADES_SCHEMA = TRADE_SCHEMA

BOOK_TICKER_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "update_id": pl.Int64(),
    "event_time_ms": pl.Int64(),
    "recv_time_ms": pl.Int64(),
    "bid_px": pl.Float64(),
    "bid_qty": pl.Float64(),
    "ask_px": pl.Float64(),
    "ask_qty": pl.Float64(),
}


def _as_dict(msg: Any) -> dict[str, Any]:
    if isinstance(msg, str | bytes | bytearray | memoryview):
        msg = loads(msg)
    if not isinstance(msg, dict):
        raise ParseError("not_object")
    return msg


def unwrap(msg: Any) -> tuple[str | None, dict[str, Any]]:
    """(stream name or None, payload) of a raw or combined-stream message."""
    msg = _as_dict(msg)
    if "stream" in msg or "data" in msg:
        stream = msg.get("stream")
        data = msg.get("data")
        if not isinstance(stream, str) or not isinstance(data, dict):
            raise ParseError("bad_envelope")
        return stream, data
    return None, msg


# ---------------------------------------------------------------- parsers


def parse_trade(data: dict[str, Any], recv_time_ms: int | None = None) -> dict[str, Any]:
    """`aggTrade` (id field `a`) or raw `trade` (id field `t`) → canonical trade row.
    A raw trade whose execution type `X` is not MARKET raises ParseError("non_market_trade")."""
    data = _as_dict(data)
    kind = data.get("e")
    if kind == "aggTrade":
        trade_id = f.id_field(data, "a")
    elif kind == "trade":
        trade_id = f.id_field(data, "t")
        # X: MARKET, or INSURANCE_FUND / ADL / NA for liquidation fills that no taker chose;
        # they carry no order-flow information, so they are dead-lettered, not counted in CVD
        if data.get("X", "MARKET") != "MARKET":
            raise ParseError("non_market_trade")
    else:
        raise ParseError("unknown_event")
    m = f.boolean(data, "m")
    return {
        "symbol": f.symbol(data),
        "event_time_ms": f.time_ms(data, "E"),
        "trade_time_ms": f.time_ms(data, "T"),
        "recv_time_ms": recv_time_ms,
        "agg_trade_id": trade_id,
        "price": f.positive(data, "p"),
        "qty": f.positive(data, "q"),
        "is_buyer_maker": m,
    }


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """A `depthUpdate` (partial or diff) with all its levels."""

    symbol: str
    event_time_ms: int
    transact_time_ms: int | None
    first_update_id: int
    last_update_id: int
    prev_last_update_id: int | None
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    recv_time_ms: int | None = None


def parse_depth(data: dict[str, Any], recv_time_ms: int | None = None, partial: bool = False) -> DepthDiff:
    """A `depthUpdate`. `partial`: levels of a partial book (quantities > 0)."""
    data = _as_dict(data)
    if data.get("e") != "depthUpdate":
        raise ParseError("unknown_event")
    first = f.id_field(data, "U")
    last = f.id_field(data, "u")
    if last < first:
        raise ParseError("bad_value:u")
    prev = f.id_field(data, "pu") if data.get("pu") is not None else None
    if prev is not None and prev >= first:
        raise ParseError("bad_value:pu")
    return DepthDiff(
        symbol=f.symbol(data),
        event_time_ms=f.time_ms(data, "E"),
        transact_time_ms=f.time_ms(data, "T") if data.get("T") is not None else None,
        first_update_id=first,
        last_update_id=last,
        prev_last_update_id=prev,
        bids=f.levels(data, "b", partial),
        asks=f.levels(data, "a", partial),
        recv_time_ms=recv_time_ms,
    )


def book_row(
    symbol: str,
    event_time_ms: int,
    recv_time_ms: int | None,
    first_update_id: int | None,
    last_update_id: int | None,
    prev_last_update_id: int | None,
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
) -> dict[str, Any]:
    """A canonical 5-level book row; missing levels are null (price and qty)."""
    row: dict[str, Any] = {
        "symbol": symbol,
        "event_time_ms": event_time_ms,
        "recv_time_ms": recv_time_ms,
        "first_update_id": first_update_id,
        "last_update_id": last_update_id,
        "prev_last_update_id": prev_last_update_id,
    }
    for side, levels in (("bid", bids), ("ask", asks)):
        for i in range(LEVELS):
            px, qty = levels[i] if i < len(levels) else (None, None)
            row[f"{side}_px_{i + 1}"] = px
            row[f"{side}_qty_{i + 1}"] = qty
    return row


def check_book(bids: list[tuple[float, float]], asks: list[tuple[float, float]], max_levels: int = 0) -> None:
    """A partial book as Binance sends it: ≥ 1 level per side (≤ `max_levels` when given), bids
    strictly descending, asks strictly ascending, best bid below best ask."""
    for key, side, sign in (("b", bids, -1), ("a", asks, 1)):
        if not side:
            raise ParseError(f"empty_book:{key}")
        if max_levels and len(side) > max_levels:
            raise ParseError(f"too_many_levels:{key}")
        if any(sign * (side[i + 1][0] - side[i][0]) <= 0 for i in range(len(side) - 1)):
            raise ParseError(f"unsorted_levels:{key}")
    if bids[0][0] >= asks[0][0]:
        raise ParseError("crossed_book")


def parse_partial_depth(data: dict[str, Any], recv_time_ms: int | None = None, max_levels: int = 0) -> dict[str, Any]:
    """`<sym>@depth5@100ms` depthUpdate → canonical book row (the best LEVELS levels per side)."""
    d = parse_depth(data, recv_time_ms, partial=True)
    check_book(d.bids, d.asks, max_levels)
    return book_row(
        d.symbol, d.event_time_ms, recv_time_ms, d.first_update_id, d.last_update_id,
        d.prev_last_update_id, d.bids[:LEVELS], d.asks[:LEVELS],
    )


def parse_book_ticker(data: dict[str, Any], recv_time_ms: int | None = None) -> dict[str, Any]:
    data = _as_dict(data)
    if data.get("e", "bookTicker") != "bookTicker":
        raise ParseError("unknown_event")
    return {
        "symbol": f.symbol(data),
        "update_id": f.id_field(data, "u"),
        # older bookTicker payloads carry only T
        "event_time_ms": f.time_ms(data, "E") if data.get("E") is not None else f.time_ms(data, "T"),
        "recv_time_ms": recv_time_ms,
        "bid_px": f.positive(data, "b"),
        "bid_qty": f.non_negative(data, "B"),
        "ask_px": f.positive(data, "a"),
        "ask_qty": f.non_negative(data, "A"),
    }


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """REST `GET /fapi/v1/depth` answer."""

    last_update_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    event_time_ms: int | None = None


def parse_snapshot(data: dict[str, Any]) -> DepthSnapshot:
    data = _as_dict(data)
    return DepthSnapshot(
        last_update_id=f.id_field(data, "lastUpdateId"),
        bids=f.levels(data, "bids"),
        asks=f.levels(data, "asks"),
        event_time_ms=f.int64(data, "E") if data.get("E") is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed message: kind is trade | depth | book_ticker | snapshot | ignored."""

    kind: str
    stream: str | None
    value: Any


def parse_message(raw: str | bytes | dict[str, Any], recv_time_ms: int | None = None) -> Parsed:
    """Dispatch any supported message (raw or combined envelope) to its parser.

    With a stream name, the stream decides what the payload must be (a payload of another kind
    on it is a ParseError, whatever its shape). Without one (REST answers, raw single streams),
    the payload's `e` does; a bare `{"result", "id"}` is a subscription ack (`ignored`) and a bare
    `lastUpdateId` object a REST snapshot. depth: a `DepthDiff` (use `parse_partial_depth` or
    `DiffBookBuilder` for a book row). The stream-aware checks of a live connection (symbol of
    the stream, plausible times) are the validator's (validation.py).
    """
    stream, data = unwrap(raw)
    if stream is not None:
        spec = stream_spec(stream)
        if spec is None:
            raise ParseError("unknown_stream")
        if data.get("e", spec.event if spec.kind == "ticker" else None) != spec.event:
            raise ParseError("missing_field:e" if data.get("e") is None else "wrong_event")
        kind = {"trade": "trade", "book": "depth", "diff": "depth", "ticker": "book_ticker"}[spec.kind]
    elif set(data) == {"result", "id"}:
        return Parsed("ignored", None, data)
    elif "lastUpdateId" in data and "e" not in data:
        return Parsed("snapshot", None, parse_snapshot(data))
    else:
        e = data.get("e")
        if e is None:
            raise ParseError("missing_field:e")
        kind = {"aggTrade": "trade", "trade": "trade", "depthUpdate": "depth", "bookTicker": "book_ticker"}.get(
            e if isinstance(e, str) else "", "")
        if not kind:
            raise ParseError("unknown_event")
    if kind == "trade":
        return Parsed("trade", stream, parse_trade(data, recv_time_ms))
    if kind == "depth":
        return Parsed("depth", stream, parse_depth(data, recv_time_ms))
    return Parsed("book_ticker", stream, parse_book_ticker(data, recv_time_ms))


# ---------------------------------------------------------------- encoders


def fmt_num(x: float) -> str:
    """Binance-style decimal string with no exponent; float(fmt_num(x)) == x."""
    return format(Decimal(repr(float(x))), "f")


def encode_agg_trade(row: dict[str, Any]) -> dict[str, Any]:
    """Canonical trade row → `aggTrade` payload (first/last trade ids = the agg id)."""
    a = int(row["agg_trade_id"])
    return {
        "e": "aggTrade",
        "E": int(row["event_time_ms"]),
        "a": a,
        "s": row["symbol"],
        "p": fmt_num(row["price"]),
        "q": fmt_num(row["qty"]),
        "f": a,
        "l": a,
        "T": int(row["trade_time_ms"] if row.get("trade_time_ms") is not None else row["event_time_ms"]),
        "m": bool(row["is_buyer_maker"]),
    }


def encode_depth5(row: dict[str, Any]) -> dict[str, Any]:
    """Canonical 5-level book row → `depth5@100ms` depthUpdate payload (null levels omitted)."""
    levels: dict[str, list[list[str]]] = {"b": [], "a": []}
    for side, key in (("bid", "b"), ("ask", "a")):
        for i in range(1, LEVELS + 1):
            px, qty = row.get(f"{side}_px_{i}"), row.get(f"{side}_qty_{i}")
            if px is not None and qty is not None:
                levels[key].append([fmt_num(px), fmt_num(qty)])
    u = int(row["last_update_id"])
    first = row.get("first_update_id")
    msg: dict[str, Any] = {
        "e": "depthUpdate",
        "E": int(row["event_time_ms"]),
        "T": int(row["event_time_ms"]),
        "s": row["symbol"],
        "U": int(first) if first is not None else u,
        "u": u,
    }
    if row.get("prev_last_update_id") is not None:
        msg["pu"] = int(row["prev_last_update_id"])
    msg["b"] = levels["b"]
    msg["a"] = levels["a"]
    return msg


def combined(stream: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"stream": stream, "data": data}


def dumps(msg: Any) -> bytes:
    return orjson.dumps(msg)


def __getattr__(name: str) -> Any:
    # the diff-depth book builder lives in book_builder.py; kept importable from here
    if name == "DiffBookBuilder":
        from alpha_assets.market.book_builder import DiffBookBuilder

        return DiffBookBuilder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

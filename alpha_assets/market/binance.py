"""Binance USD-M futures WebSocket/REST messages <-> canonical rows, and a diff-depth book builder.

Every parser raises `ParseError(reason)` on malformed input and nothing else, so a caller can
dead-letter the message with a short reason code ("bad_json", "missing_field:p", "bad_number:q").
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import polars as pl

# the canonical tables are defined once, in schema.py; re-exported here for parser users
from alpha_assets.market.schema import BOOK_SCHEMA as BOOK_SCHEMA
from alpha_assets.market.schema import DEADLETTER_SCHEMA as DEADLETTER_SCHEMA
from alpha_assets.market.schema import LEVELS, TRADE_SCHEMA

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


class ParseError(ValueError):
    """A message that cannot be turned into a canonical row; `reason` is a short code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def dead_letter(
    source: str,
    reason: str,
    symbol: str | None,
    event_time_ms: int | None,
    key: str | None,
    payload: Any,
) -> dict[str, Any]:
    """One dead-letter row; `payload` is kept as text (JSON when it is not already a string)."""
    if isinstance(payload, bytes):
        text = payload.decode("utf-8", errors="replace")
    elif isinstance(payload, str):
        text = payload
    else:
        try:
            text = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            text = repr(payload)
    return {
        "source": source,
        "reason": reason,
        "symbol": symbol,
        "event_time_ms": event_time_ms,
        "key": key,
        "payload": text,
    }


# ---------------------------------------------------------------- field helpers


def loads(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ParseError("bad_json") from exc


def _get(data: dict[str, Any], key: str) -> Any:
    if key not in data or data[key] is None:
        raise ParseError(f"missing_field:{key}")
    return data[key]


def _int(data: dict[str, Any], key: str) -> int:
    v = _get(data, key)
    if isinstance(v, bool):
        raise ParseError(f"bad_number:{key}")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isascii():
        try:
            return int(v)
        except ValueError:
            pass
    raise ParseError(f"bad_number:{key}")


def _num(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise ParseError(f"bad_number:{key}")
    try:
        x = float(v)
    except (ValueError, OverflowError) as exc:
        raise ParseError(f"bad_number:{key}") from exc
    if not math.isfinite(x):
        raise ParseError(f"bad_number:{key}")
    return x


def _positive(data: dict[str, Any], key: str) -> float:
    x = _num(_get(data, key), key)
    if x <= 0:
        raise ParseError(f"bad_value:{key}")
    return x


def _non_negative(data: dict[str, Any], key: str) -> float:
    x = _num(_get(data, key), key)
    if x < 0:
        raise ParseError(f"bad_value:{key}")
    return x


def _symbol(data: dict[str, Any]) -> str:
    s = _get(data, "s")
    if not isinstance(s, str) or not s:
        raise ParseError("bad_value:s")
    return s.upper()


def _levels(data: dict[str, Any], key: str) -> list[tuple[float, float]]:
    raw = _get(data, key)
    if not isinstance(raw, list):
        raise ParseError(f"bad_levels:{key}")
    out: list[tuple[float, float]] = []
    for lvl in raw:
        if not isinstance(lvl, list | tuple) or len(lvl) < 2:
            raise ParseError(f"bad_levels:{key}")
        px = _num(lvl[0], key)
        qty = _num(lvl[1], key)
        if px <= 0 or qty < 0:
            raise ParseError(f"bad_value:{key}")
        out.append((px, qty))
    return out


def _as_dict(msg: Any) -> dict[str, Any]:
    if isinstance(msg, str | bytes):
        msg = loads(msg)
    if not isinstance(msg, dict):
        raise ParseError("not_object")
    return msg


def unwrap(msg: Any) -> tuple[str | None, dict[str, Any]]:
    """(stream name or None, payload) of a raw or combined-stream message."""
    msg = _as_dict(msg)
    if "stream" in msg and "data" in msg:
        stream = msg["stream"]
        data = msg["data"]
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
        trade_id = _int(data, "a")
    elif kind == "trade":
        trade_id = _int(data, "t")
        # X: MARKET, or INSURANCE_FUND / ADL / NA for liquidation fills that no taker chose;
        # they carry no order-flow information, so they are dead-lettered, not counted in CVD
        if data.get("X", "MARKET") != "MARKET":
            raise ParseError("non_market_trade")
    else:
        raise ParseError("unknown_event")
    m = _get(data, "m")
    if not isinstance(m, bool):
        raise ParseError("bad_value:m")
    return {
        "symbol": _symbol(data),
        "event_time_ms": _int(data, "E"),
        "trade_time_ms": _int(data, "T"),
        "recv_time_ms": recv_time_ms,
        "agg_trade_id": trade_id,
        "price": _positive(data, "p"),
        "qty": _positive(data, "q"),
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


def parse_depth(data: dict[str, Any], recv_time_ms: int | None = None) -> DepthDiff:
    data = _as_dict(data)
    if data.get("e") != "depthUpdate":
        raise ParseError("unknown_event")
    first = _int(data, "U")
    last = _int(data, "u")
    if last < first:
        raise ParseError("bad_value:u")
    return DepthDiff(
        symbol=_symbol(data),
        event_time_ms=_int(data, "E"),
        transact_time_ms=_int(data, "T") if data.get("T") is not None else None,
        first_update_id=first,
        last_update_id=last,
        prev_last_update_id=_int(data, "pu") if data.get("pu") is not None else None,
        bids=_levels(data, "b"),
        asks=_levels(data, "a"),
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


def parse_partial_depth(data: dict[str, Any], recv_time_ms: int | None = None) -> dict[str, Any]:
    """`<sym>@depth5@100ms` depthUpdate → canonical book row (levels sorted best first)."""
    d = parse_depth(data, recv_time_ms)
    bids = sorted((lv for lv in d.bids if lv[1] > 0), key=lambda lv: -lv[0])[:LEVELS]
    asks = sorted((lv for lv in d.asks if lv[1] > 0), key=lambda lv: lv[0])[:LEVELS]
    if bids and asks and bids[0][0] >= asks[0][0]:
        raise ParseError("crossed_book")
    return book_row(
        d.symbol, d.event_time_ms, recv_time_ms, d.first_update_id, d.last_update_id,
        d.prev_last_update_id, bids, asks,
    )


def parse_book_ticker(data: dict[str, Any], recv_time_ms: int | None = None) -> dict[str, Any]:
    data = _as_dict(data)
    if data.get("e", "bookTicker") != "bookTicker":
        raise ParseError("unknown_event")
    return {
        "symbol": _symbol(data),
        "update_id": _int(data, "u"),
        # older bookTicker payloads carry only T
        "event_time_ms": _int(data, "E") if data.get("E") is not None else _int(data, "T"),
        "recv_time_ms": recv_time_ms,
        "bid_px": _positive(data, "b"),
        "bid_qty": _non_negative(data, "B"),
        "ask_px": _positive(data, "a"),
        "ask_qty": _non_negative(data, "A"),
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
        last_update_id=_int(data, "lastUpdateId"),
        bids=_levels(data, "bids"),
        asks=_levels(data, "asks"),
        event_time_ms=_int(data, "E") if data.get("E") is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed message: kind is trade | depth | book_ticker | snapshot | ignored."""

    kind: str
    stream: str | None
    value: Any


def parse_message(raw: str | bytes | dict[str, Any], recv_time_ms: int | None = None) -> Parsed:
    """Dispatch any supported message (raw or combined envelope) to its parser.

    depth: a `DepthDiff` (diff streams and partial streams alike; use `parse_partial_depth`
    or `DiffBookBuilder` to turn it into a book row). Subscription acks ({"result":..,"id":..})
    are `ignored`.
    """
    stream, data = unwrap(raw)
    if "lastUpdateId" in data:
        return Parsed("snapshot", stream, parse_snapshot(data))
    if "result" in data and "id" in data:
        return Parsed("ignored", stream, data)
    e = data.get("e")
    if e in ("aggTrade", "trade"):
        return Parsed("trade", stream, parse_trade(data, recv_time_ms))
    if e == "depthUpdate":
        return Parsed("depth", stream, parse_depth(data, recv_time_ms))
    if e == "bookTicker" or (e is None and stream is not None and stream.endswith("@bookTicker")):
        return Parsed("book_ticker", stream, parse_book_ticker(data, recv_time_ms))
    raise ParseError("unknown_event" if e is not None else "missing_field:e")


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


# ---------------------------------------------------------------- order book from diffs


@dataclass
class DiffBookBuilder:
    """Full order book from a REST snapshot plus the `@depth` diff stream.

    `apply` returns "applied", "stale" (u < snapshot id, dropped), "waiting" (no snapshot yet,
    or the first diff does not bridge the snapshot) or "gap" (pu != previous u: the book is no
    longer trustworthy; `needs_resync` stays True until the next `load_snapshot`).
    """

    symbol: str
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    snapshot_id: int | None = None
    last_update_id: int | None = None
    first_update_id: int | None = None
    prev_last_update_id: int | None = None
    event_time_ms: int | None = None
    recv_time_ms: int | None = None
    synced: bool = False
    gaps: int = 0
    stale: int = 0

    @property
    def needs_resync(self) -> bool:
        return self.snapshot_id is None

    def load_snapshot(self, snap: DepthSnapshot) -> None:
        self.bids = {px: q for px, q in snap.bids if q > 0}
        self.asks = {px: q for px, q in snap.asks if q > 0}
        self.snapshot_id = snap.last_update_id
        self.last_update_id = snap.last_update_id
        self.first_update_id = None
        self.prev_last_update_id = None
        self.event_time_ms = snap.event_time_ms
        self.synced = False

    def apply(self, diff: DepthDiff) -> str:
        if self.snapshot_id is None:
            return "waiting"
        if not self.synced:
            if diff.last_update_id < self.snapshot_id:
                self.stale += 1
                return "stale"
            if diff.first_update_id > self.snapshot_id:
                # the stream started after the snapshot: it cannot be bridged
                self._gap()
                return "gap"
            self.synced = True
        elif diff.prev_last_update_id != self.last_update_id:
            self._gap()
            return "gap"
        for book, levels in ((self.bids, diff.bids), (self.asks, diff.asks)):
            for px, qty in levels:
                if qty == 0:
                    book.pop(px, None)
                else:
                    book[px] = qty
        self.first_update_id = diff.first_update_id
        self.prev_last_update_id = diff.prev_last_update_id
        self.last_update_id = diff.last_update_id
        self.event_time_ms = diff.event_time_ms
        self.recv_time_ms = diff.recv_time_ms
        return "applied"

    def _gap(self) -> None:
        self.gaps += 1
        self.snapshot_id = None
        self.synced = False

    def best(self) -> tuple[float | None, float | None, float | None, float | None]:
        """(bid_px, bid_qty, ask_px, ask_qty) of the top of book."""
        bp = max(self.bids) if self.bids else None
        ap = min(self.asks) if self.asks else None
        return (
            bp,
            self.bids[bp] if bp is not None else None,
            ap,
            self.asks[ap] if ap is not None else None,
        )

    def top(self, n: int = LEVELS, event_time_ms: int | None = None) -> dict[str, Any]:
        """A canonical book row of the current state (n ≤ 5 levels, the rest null)."""
        bids = [(px, self.bids[px]) for px in heapq.nlargest(n, self.bids)]
        asks = [(px, self.asks[px]) for px in heapq.nsmallest(n, self.asks)]
        return book_row(
            self.symbol,
            event_time_ms if event_time_ms is not None else (self.event_time_ms or 0),
            self.recv_time_ms,
            self.first_update_id,
            self.last_update_id,
            self.prev_last_update_id,
            bids,
            asks,
        )

"""Canonical column sets and dtypes of raw market tables (docs/interfaces.md)."""

from __future__ import annotations

from typing import Any

import orjson
import polars as pl

LEVELS = 5

# Per-symbol arrival counter the harvester stamps on every trade and book row as it receives
# them (one counter shared by the symbol's trades and book). Nullable: simulated days and
# replayed recordings have none. The engine's `arrival` book join orders by it (engine/arrival.py).
INGEST_SEQ = "ingest_seq"

TRADE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "event_time_ms": pl.Int64(),
    "trade_time_ms": pl.Int64(),
    "recv_time_ms": pl.Int64(),
    "agg_trade_id": pl.Int64(),
    "price": pl.Float64(),
    "qty": pl.Float64(),
    "is_buyer_maker": pl.Boolean(),
    INGEST_SEQ: pl.Int64(),
}

BOOK_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "event_time_ms": pl.Int64(),
    "recv_time_ms": pl.Int64(),
    "first_update_id": pl.Int64(),
    "last_update_id": pl.Int64(),
    "prev_last_update_id": pl.Int64(),
    **{f"{side}_{kind}_{k}": pl.Float64() for side in ("bid", "ask") for k in range(1, LEVELS + 1)
       for kind in ("px", "qty")},
    INGEST_SEQ: pl.Int64(),
}

# Dead letters: what could not be kept as a canonical row, and why. `symbol` is the symbol *as
# received* (it may be unknown, padded or lower case); `stream` the stream it came on (null when
# it had none); `payload` the head of the raw frame (or the row as JSON), at most
# DEADLETTER_HEAD_CHARS characters, so a hostile 16 MiB frame costs a bounded record.
DEADLETTER_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.Utf8(),
    "reason": pl.Utf8(),
    "symbol": pl.Utf8(),
    "event_time_ms": pl.Int64(),
    "key": pl.Utf8(),
    "payload": pl.Utf8(),
    "stream": pl.Utf8(),
    "recv_time_ms": pl.Int64(),
}
DEADLETTER_HEAD_CHARS = 1024
_SYMBOL_CHARS = 64
_INT64 = (-(2**63), 2**63 - 1)
# Landing bucket of dead letters that belong to no configured symbol (unknown or malformed
# symbol, no stream, garbage frames). Not a valid symbol name, so it never collides with one.
UNROUTED = "_UNROUTED"
# `stream` of dead letters about REST answers (backfill), which came on no WebSocket stream
REST_STREAM = "rest"


def _head(payload: Any) -> str:
    if isinstance(payload, bytes | bytearray | memoryview):
        text = bytes(payload[: DEADLETTER_HEAD_CHARS * 4]).decode("utf-8", errors="replace")
    elif isinstance(payload, str):
        text = payload
    else:
        try:
            text = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = repr(payload)[: DEADLETTER_HEAD_CHARS]
    return text[:DEADLETTER_HEAD_CHARS]


def _int64_or_none(v: Any) -> int | None:
    return v if type(v) is int and _INT64[0] <= v <= _INT64[1] else None


def dead_letter(
    source: str,
    reason: str,
    symbol: Any,
    event_time_ms: Any,
    key: str | None,
    payload: Any,
    *,
    stream: Any = None,
    recv_time_ms: int | None = None,
) -> dict[str, Any]:
    """One dead-letter row of DEADLETTER_SCHEMA. Values taken from a hostile message are kept only
    when they fit the column (a symbol that is not a string, an event time beyond int64 → null)."""
    return {
        "source": source,
        "reason": reason,
        "symbol": symbol[:_SYMBOL_CHARS] if isinstance(symbol, str) else None,
        "event_time_ms": _int64_or_none(event_time_ms),
        "key": key,
        "payload": _head(payload),
        "stream": stream[:_SYMBOL_CHARS * 2] if isinstance(stream, str) else None,
        "recv_time_ms": _int64_or_none(recv_time_ms),
    }


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Columns in canonical order and dtype; absent columns become nulls."""
    exprs = [
        (pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype=dtype)).alias(name)
        for name, dtype in schema.items()
    ]
    return frame.select(exprs)

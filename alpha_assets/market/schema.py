"""Canonical column sets and dtypes of raw market tables (docs/interfaces.md)."""

from __future__ import annotations

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

DEADLETTER_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.Utf8(),
    "reason": pl.Utf8(),
    "symbol": pl.Utf8(),
    "event_time_ms": pl.Int64(),
    "key": pl.Utf8(),
    "payload": pl.Utf8(),
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

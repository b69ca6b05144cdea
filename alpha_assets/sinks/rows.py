"""Small writes without polars kernels: a live worker hands the sinks 1-50 rows at a time, and at that
size the fixed cost of a polars call (a lazy plan, ~0.1-1 ms each) is the whole cost. Rows of such a
frame are taken as Python tuples once and encoded with orjson, whose output is byte-identical to
polars' NDJSON writer for every Signals column type (shortest round-trip floats, NaN/inf as null,
the same string escapes) — `tests/sinks/test_small_writes.py` holds both encoders to that.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import polars as pl

from alpha_assets.sinks.schema import KEY, SIGNAL_COLUMNS, SIGNAL_SCHEMA, conform

SMALL_ROWS = 256  # at or below: Python rows; above: polars / Arrow in bulk
_DTYPES = list(SIGNAL_SCHEMA.values())
_FLOATS = tuple(i for i, t in enumerate(_DTYPES) if t == pl.Float64)
_KEY_POS = tuple(SIGNAL_COLUMNS.index(k) for k in KEY)
TS_POS = SIGNAL_COLUMNS.index("ts_ms")
SYMBOL_POS = SIGNAL_COLUMNS.index("symbol")


def is_small(df: pl.DataFrame) -> bool:
    return df.height <= SMALL_ROWS


def canonical_rows(df: pl.DataFrame) -> list[tuple[Any, ...]]:
    """The Signals columns of `df` as row tuples in canonical order and types, NaN as None
    (what `conform` gives, without running a polars plan when the frame is canonical already)."""
    if df.columns != list(SIGNAL_COLUMNS) or df.dtypes != _DTYPES:
        df = conform(df)  # raises SignalFrameError naming a missing or mistyped column
        return df.rows()
    rows = df.rows()
    if any(_has_nan(row) for row in rows):
        rows = [_nan_to_none(row) for row in rows]
    return rows


def _has_nan(row: tuple[Any, ...]) -> bool:
    return any(row[i] is not None and math.isnan(row[i]) for i in _FLOATS)


def _nan_to_none(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if i in _FLOATS and v is not None and math.isnan(v) else v for i, v in enumerate(row))


def has_null_key(row: tuple[Any, ...]) -> bool:
    return any(row[i] is None for i in _KEY_POS)


def key_of(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(row[i] for i in _KEY_POS)


def encode(row: tuple[Any, ...]) -> bytes:
    """One JSON line (no newline), byte-identical to polars' `write_ndjson` for the same row."""
    return orjson.dumps(dict(zip(SIGNAL_COLUMNS, row, strict=True)))


def frame_of(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SIGNAL_SCHEMA, orient="row")

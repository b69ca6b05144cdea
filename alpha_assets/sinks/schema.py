"""The Signals columns (alpha_assets.signal_contract) as every sink stores them: SQLite types, conforming."""

from __future__ import annotations

import polars as pl

from alpha_assets.signal_contract import KEY as KEY
from alpha_assets.signal_contract import SIGNAL_COLUMNS as SIGNAL_COLUMNS
from alpha_assets.signal_contract import SIGNAL_SCHEMA as SIGNAL_SCHEMA
from alpha_assets.signal_contract import STRONG_TYPES as STRONG_TYPES


def sqlite_type(dtype: pl.DataType) -> str:
    if dtype == pl.Utf8:
        return "TEXT"
    if dtype == pl.Float64:
        return "REAL"
    return "INTEGER"  # Int64 and Boolean (0/1)


class SignalFrameError(ValueError):
    """A frame handed to a sink lacks Signals columns or has columns of the wrong type."""


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """The Signals columns in canonical order and types; extra columns are dropped.

    Integer/float widths are cast; anything else that does not match raises, naming the column.
    NaN floats become null: neither JSON nor SQLite can hold NaN, so both sinks agree on null.
    """
    missing = [c for c in SIGNAL_COLUMNS if c not in df.columns]
    if missing:
        raise SignalFrameError(f"signals frame lacks columns {missing}; expected {list(SIGNAL_COLUMNS)}")
    exprs = []
    for name, dtype in SIGNAL_SCHEMA.items():
        have = df.schema[name]
        col = pl.col(name)
        if have != dtype:
            ok = (dtype == pl.Float64 and (have.is_numeric())) or (dtype == pl.Int64 and have.is_integer()) \
                or (dtype == pl.Utf8 and have in (pl.Categorical, pl.Enum)) or have == pl.Null
            if not ok:
                raise SignalFrameError(f"signals column {name!r} has type {have}, expected {dtype}")
            col = col.cast(dtype)
        if dtype == pl.Float64:
            col = col.fill_nan(None)
        exprs.append(col.alias(name))
    return df.select(exprs)


def split_bad_keys(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows with a complete key, rows with a null key part): the latter cannot be stored idempotently."""
    bad = pl.any_horizontal([pl.col(k).is_null() for k in KEY])
    if not df.select(bad.any()).item():
        return df, df.clear()
    return df.filter(~bad), df.filter(bad)

"""One chunk of trades / book rows of one symbol as numpy columns: the input of the live step
(engine/stream.py). Built from a polars frame or from row mappings (what a stream consumer
decodes), with the meaning `pipeline.normalise` gives the same values: canonical columns, absent
columns null, symbols upper case; a value of another type goes through `normalise` itself.

Nulls: integer columns carry a mask (value 0 under it); float columns carry NaN plus a mask
where null and NaN mean different things (prices, book levels); `ingest_seq` holds I64_MIN for
null, which is how the arrival keys (engine/arrival.py) spell null.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import polars as pl

from alpha_assets.engine.arrival import I64_MIN, Keys
from alpha_assets.engine.pipeline import BOOK_SCHEMA, TRADE_SCHEMA, normalise
from alpha_assets.market.schema import INGEST_SEQ

# ofi_kernel's order: rows 0-4 bid prices, 5-9 bid quantities, 10-14 ask prices, 15-19 ask quantities
LEVEL_COLUMNS = [f"{side}_{kind}_{k}" for side in ("bid", "ask") for kind in ("px", "qty") for k in range(1, 6)]

Rows = Sequence[Mapping[str, Any]]


def _keys(vals: np.ndarray, null: np.ndarray) -> np.ndarray:
    return np.where(null, I64_MIN, vals) if null.any() else vals


class _Cols:
    """Row selection and concatenation over every array field (axis 0; `lv`/`lvn` are (20, n)).
    Subclasses are slotted dataclasses, so `__slots__` lists the fields in order."""

    __slots__ = ()

    def take(self, idx: np.ndarray | slice) -> Any:
        names: tuple[str, ...] = self.__slots__
        arrays: list[np.ndarray] = [getattr(self, name) for name in names]
        return type(self)(*(np.ascontiguousarray(a[:, idx]) if a.ndim == 2 else a[idx] for a in arrays))

    def extend(self, other: Any) -> Any:
        names: tuple[str, ...] = self.__slots__
        return type(self)(*(np.concatenate((getattr(self, name), getattr(other, name)), axis=-1) for name in names))


@dataclass(slots=True)
class TradeCols(_Cols):
    evt: np.ndarray
    evt_null: np.ndarray
    recv: np.ndarray
    recv_null: np.ndarray
    tid: np.ndarray
    tid_null: np.ndarray
    price: np.ndarray  # NaN where null; price_null tells them apart (the Signals price keeps NaN)
    price_null: np.ndarray
    qty: np.ndarray  # NaN where null
    side: np.ndarray  # int8: 1 buy, 0 sell, -1 unknown (is_buy = not is_buyer_maker)
    reconnect: np.ndarray  # null = False
    missing: np.ndarray  # missing_msgs_rate; null and NaN = 0.0
    seq: np.ndarray  # ingest_seq, I64_MIN = null

    @property
    def n(self) -> int:
        return int(self.evt.shape[0])

    def keys(self) -> Keys:
        return self.seq, _keys(self.recv, self.recv_null), _keys(self.evt, self.evt_null), _keys(self.tid, self.tid_null)


@dataclass(slots=True)
class BookCols(_Cols):
    evt: np.ndarray
    evt_null: np.ndarray
    recv: np.ndarray
    recv_null: np.ndarray
    uid: np.ndarray
    uid_null: np.ndarray
    pu: np.ndarray
    pu_null: np.ndarray
    lv: np.ndarray  # (20, n) float, NaN where null, rows in LEVEL_COLUMNS order
    lvn: np.ndarray  # (20, n) bool null mask
    seq: np.ndarray

    @property
    def n(self) -> int:
        return int(self.evt.shape[0])

    def keys(self) -> Keys:
        return self.seq, _keys(self.recv, self.recv_null), _keys(self.evt, self.evt_null), _keys(self.uid, self.uid_null)


def empty_trades() -> TradeCols:
    i, f, b = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.bool_)
    return TradeCols(i, b, i, b, i, b, f, b, f, np.zeros(0, np.int8), b, f, i)


def empty_book() -> BookCols:
    i, b = np.zeros(0, np.int64), np.zeros(0, np.bool_)
    return BookCols(i, b, i, b, i, b, i, b, np.zeros((20, 0)), np.zeros((20, 0), np.bool_), i)


# --------------------------------------------------------------------------- from a polars frame

# Only constructors and to_numpy below, unless a column holds some nulls: polars compute calls go
# through its thread pool, whose wake-up costs milliseconds on a busy machine.

def _np(s: pl.Series) -> np.ndarray:
    # writable arrays only: the compiled drivers are specialised on them (no read-only variants)
    a = s.to_numpy()
    return a if a.flags.writeable else a.copy()


def _col(cols: dict[str, pl.Series], n: int, name: str, fill: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """(values with `fill` under nulls, null mask) of a column; absent = all null."""
    s = cols.get(name)
    if s is None or (nulls := s.null_count()) == n:
        return np.full(n, fill, dtype), np.ones(n, np.bool_)
    if nulls:
        return _np(s.fill_null(fill)), _np(s.is_null())
    return _np(s), np.zeros(n, np.bool_)


def _canonical(frame: pl.DataFrame | None, schema: dict[str, Any], symbol: str
               ) -> tuple[dict[str, pl.Series], int, int]:
    """This symbol's columns with canonical dtypes, its row count, and the count of other symbols'
    rows. Frames already canonical (the usual case) are used as they are; anything else goes
    through `normalise`."""
    if frame is None or frame.height == 0:
        return {}, 0, 0
    have = frame.schema
    ok = all(have[name] == dtype for name, dtype in schema.items() if name in have)
    syms = frame.get_column("symbol") if "symbol" in have else None
    if ok and syms is not None and syms.dtype == pl.Utf8 and syms.null_count() == 0 and bool((syms == symbol).all()):
        mine, foreign = frame, 0
    else:
        norm = normalise(frame, schema)
        mine = norm.filter(pl.col("symbol") == symbol)
        foreign = norm.height - mine.height
    return {s.name: s for s in mine.get_columns()}, mine.height, foreign


def trades_from_frame(frame: pl.DataFrame | None, symbol: str) -> tuple[TradeCols, int]:
    cols, n, foreign = _canonical(frame, TRADE_SCHEMA, symbol)
    evt, evt_null = _col(cols, n, "event_time_ms", 0, np.int64)
    recv, recv_null = _col(cols, n, "recv_time_ms", 0, np.int64)
    tid, tid_null = _col(cols, n, "agg_trade_id", 0, np.int64)
    price, price_null = _col(cols, n, "price", np.nan, np.float64)
    qty, _ = _col(cols, n, "qty", np.nan, np.float64)
    maker, maker_null = _col(cols, n, "is_buyer_maker", False, np.bool_)
    side = np.where(maker_null, -1, np.where(maker, 0, 1)).astype(np.int8)
    reconnect, _ = _col(cols, n, "reconnect", False, np.bool_)
    missing, _ = _col(cols, n, "missing_msgs_rate", np.nan, np.float64)
    seq, seq_null = _col(cols, n, INGEST_SEQ, 0, np.int64)
    return TradeCols(evt, evt_null, recv, recv_null, tid, tid_null, price, price_null, qty, side, reconnect,
                     np.nan_to_num(missing, nan=0.0, posinf=np.inf, neginf=-np.inf),
                     _keys(seq, seq_null)), foreign


def book_from_frame(frame: pl.DataFrame | None, symbol: str) -> tuple[BookCols, int]:
    cols, n, foreign = _canonical(frame, BOOK_SCHEMA, symbol)
    evt, evt_null = _col(cols, n, "event_time_ms", 0, np.int64)
    recv, recv_null = _col(cols, n, "recv_time_ms", 0, np.int64)
    uid, uid_null = _col(cols, n, "last_update_id", 0, np.int64)
    pu, pu_null = _col(cols, n, "prev_last_update_id", 0, np.int64)
    lv = np.empty((20, n))
    lvn = np.zeros((20, n), np.bool_)
    for j, name in enumerate(LEVEL_COLUMNS):
        lv[j], lvn[j] = _col(cols, n, name, np.nan, np.float64)
    seq, seq_null = _col(cols, n, INGEST_SEQ, 0, np.int64)
    return BookCols(evt, evt_null, recv, recv_null, uid, uid_null, pu, pu_null, lv, lvn, _keys(seq, seq_null)), foreign


# --------------------------------------------------------------------------- from row mappings

_PY_TYPES: dict[Any, tuple[type, ...]] = {pl.Int64: (int,), pl.Float64: (int, float), pl.Boolean: (bool,)}


def _slow(vals: list[Any], name: str, dtype: Any) -> pl.Series:
    """A column of unexpected Python types, read and normalised exactly as a frame would be; where
    polars has no such cast at all (text to Boolean), values not of the column's type are null."""
    try:
        return normalise(pl.DataFrame({"symbol": [""] * len(vals), name: pl.Series(name, vals, strict=False)}),
                         {"symbol": pl.Utf8, name: dtype}).get_column(name)
    except pl.exceptions.PolarsError:
        ok = _PY_TYPES[dtype]
        return pl.Series(name, [v if isinstance(v, ok) else None for v in vals], dtype=dtype, strict=False)


def _rows_i64(vals: list[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.array(vals)
    if a.dtype.kind in "ib" and a.ndim == 1:
        return a.astype(np.int64, copy=False), np.zeros(a.shape[0], np.bool_)
    if a.dtype == object and all(v is None or type(v) is int for v in vals):
        null = np.fromiter((v is None for v in vals), np.bool_, len(vals))
        return np.fromiter((0 if v is None else v for v in vals), np.int64, len(vals)), null
    s = _slow(vals, name, pl.Int64)  # floats (rounded), strings, ...
    return s.fill_null(0).to_numpy(), s.is_null().to_numpy()


def _rows_f64(vals: list[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        a = np.array(vals, dtype=np.float64)  # None -> NaN; numeric strings parse as float() does
    except (TypeError, ValueError):
        s = _slow(vals, name, pl.Float64)
        return s.fill_null(np.nan).to_numpy(), s.is_null().to_numpy()
    nan = np.isnan(a)
    if nan.any():
        return a, np.fromiter((v is None for v in vals), np.bool_, len(vals))
    return a, nan


def _rows_bool(vals: list[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(value, null) of a Boolean column."""
    a = np.array(vals)
    if a.dtype == np.bool_ and a.ndim == 1:
        return a, np.zeros(a.shape[0], np.bool_)
    if all(v is None or type(v) is bool for v in vals):
        null = np.fromiter((v is None for v in vals), np.bool_, len(vals))
        return np.fromiter((v is True for v in vals), np.bool_, len(vals)), null
    s = _slow(vals, name, pl.Boolean)
    return s.fill_null(False).to_numpy(), s.is_null().to_numpy()


def _mine(rows: Rows, symbol: str) -> tuple[Rows, int]:
    try:
        if list(map(itemgetter("symbol"), rows)).count(symbol) == len(rows):
            return rows, 0
    except KeyError:
        pass

    def sym(r: Mapping[str, Any]) -> str:
        v = r.get("symbol")
        return "" if v is None else str(v).upper()

    mine = [r for r in rows if sym(r) == symbol]
    return mine, len(rows) - len(mine)


def _grid(rows: Rows, names: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """The named values of every row (absent keys are None)."""
    try:
        return list(map(itemgetter(*names), rows))  # the fast lookup when every key is there
    except KeyError:
        return [tuple(map(r.get, names)) for r in rows]


def _block(grid: list[tuple[Any, ...]], code: str, dtype: Any) -> np.ndarray | None:
    """(k, n) array of a grid of n rows of k values when every value is of the array module's type
    `code` ("q": int, no None / float / str; "d": int or float, no None / str); else None."""
    try:
        flat = array(code, chain.from_iterable(grid)) if len(grid) > 1 else array(code, grid[0])
    except (TypeError, OverflowError):
        return None
    return np.ascontiguousarray(np.frombuffer(flat, dtype=dtype).reshape(len(grid), -1).T)


def _int_block(rows: Rows, names: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Integer columns that are usually all present: one conversion for all of them."""
    grid = _grid(rows, names)
    cols = _block(grid, "q", np.int64)
    if cols is not None:
        no_null = np.zeros(len(rows), np.bool_)
        return [(cols[j], no_null) for j in range(len(names))]
    return [_rows_i64(list(col), name) for col, name in zip(zip(*grid, strict=True), names, strict=True)]


def _optional(rows: Rows, name: str) -> list[Any] | None:
    """A column's values, or None when no row has one (harvester-only and optional columns)."""
    vals = [r.get(name) for r in rows]
    return None if vals.count(None) == len(vals) else vals


def trades_from_rows(rows: Rows, symbol: str) -> tuple[TradeCols, int]:
    rows, foreign = _mine(rows, symbol)
    n = len(rows)
    if not n:
        return empty_trades(), foreign
    (evt, evt_null), (recv, recv_null), (tid, tid_null), (seq, seq_null) = _int_block(
        rows, ("event_time_ms", "recv_time_ms", "agg_trade_id", INGEST_SEQ))
    pq = _grid(rows, ("price", "qty"))
    a = _block(pq, "d", np.float64)
    if a is not None:
        price, qty, price_null = a[0], a[1], np.zeros(n, np.bool_)
    else:  # a null or a string among them
        price, price_null = _rows_f64([p for p, _ in pq], "price")
        qty, _ = _rows_f64([q for _, q in pq], "qty")
    makers: list[Any] = [r.get("is_buyer_maker") for r in rows]
    try:
        m = np.frombuffer(array("b", makers), dtype=np.int8)  # bools -> 1/0 (is_buy = not maker)
        side = 1 - m if not (m & ~np.int8(1)).any() else None
    except (TypeError, OverflowError):
        side = None
    if side is None:  # a null, or not a bool
        maker, maker_null = _rows_bool(makers, "is_buyer_maker")
        side = np.where(maker_null, -1, np.where(maker, 0, 1)).astype(np.int8)
    vals = _optional(rows, "reconnect")
    reconnect = np.zeros(n, np.bool_) if vals is None else _rows_bool(vals, "reconnect")[0]
    vals = _optional(rows, "missing_msgs_rate")
    missing = (np.zeros(n) if vals is None
               else np.nan_to_num(_rows_f64(vals, "missing_msgs_rate")[0], nan=0.0, posinf=np.inf, neginf=-np.inf))
    return TradeCols(evt, evt_null, recv, recv_null, tid, tid_null, price, price_null, qty, side, reconnect, missing,
                     _keys(seq, seq_null)), foreign


def book_from_rows(rows: Rows, symbol: str) -> tuple[BookCols, int]:
    rows, foreign = _mine(rows, symbol)
    n = len(rows)
    if not n:
        return empty_book(), foreign
    (evt, evt_null), (recv, recv_null), (uid, uid_null), (pu, pu_null), (seq, seq_null) = _int_block(
        rows, ("event_time_ms", "recv_time_ms", "last_update_id", "prev_last_update_id", INGEST_SEQ))
    grid = _grid(rows, tuple(LEVEL_COLUMNS))
    lv = _block(grid, "d", np.float64)  # (20, n)
    if lv is not None:
        lvn = np.zeros((20, n), np.bool_)
        return BookCols(evt, evt_null, recv, recv_null, uid, uid_null, pu, pu_null, lv, lvn, _keys(seq, seq_null)), foreign
    try:  # a missing level (null) or a string among them
        lv = np.ascontiguousarray(np.array(grid, dtype=np.float64).T)  # None -> NaN
        nan = np.isnan(lv)
        lvn = np.array([[v is None for v in row] for row in grid], dtype=np.bool_).T.copy() if nan.any() else nan
    except (TypeError, ValueError):
        lv = np.empty((20, n))
        lvn = np.zeros((20, n), np.bool_)
        for j, (col, name) in enumerate(zip(zip(*grid, strict=True), LEVEL_COLUMNS, strict=True)):
            lv[j], lvn[j] = _rows_f64(list(col), name)
    return BookCols(evt, evt_null, recv, recv_null, uid, uid_null, pu, pu_null, lv, lvn, _keys(seq, seq_null)), foreign

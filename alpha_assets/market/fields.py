"""Strict field parsing for exchange messages: JSON without duplicate keys, decimal strings,
64-bit integers, epoch-millisecond times.

Every helper raises `ParseError(reason)` and nothing else. Reasons are short codes whose field
suffix is always one of *our* field names, never text taken from the message, so the set of
reasons (and of per-reason counters) stays bounded whatever the input.

Why strict: Python's `float` accepts "65_012.3", " 1e3 ", "nan" and full-width digits, and a
JSON object may repeat a key (orjson keeps the last value, so `{"p": "NaN", "p": "1.0"}` reads
as valid). Binance sends prices and quantities as plain decimal strings and ids and times as
JSON integers; anything else is a malformed message.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Sanity bounds of an epoch-ms time that may be landed (2010-01-01 .. 2100-01-01 UTC): what the
# landing zone's date arithmetic can hold. The check that matters for a live message is the
# validator's, against the connection's receive clock (validation.py).
TIME_MIN_MS, TIME_MAX_MS = 1_262_304_000_000, 4_102_444_800_000
# ASCII digits only: `\d` would match full-width and other Unicode digits.
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_SYMBOL = re.compile(r"[A-Z0-9]{2,30}")
# bytes that, after a closing quote, could hide a key from the fast duplicate-key count
_QUOTE_SPACE = re.compile(rb'"[ \t\n\r]')  # one scan of the frame (the hot path of every message)


class ParseError(ValueError):
    """A message that cannot be turned into a canonical row; `reason` is a short code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _count_keys(obj: Any) -> int:
    """Keys of the object and of the objects directly inside it (an envelope and its data). Keys
    deeper down are not counted: the frame then has more `":` than counted and takes the slow
    path, so undercounting costs time, never a missed duplicate."""
    if not isinstance(obj, dict):
        return 0
    n = len(obj)
    for v in obj.values():
        if type(v) is dict:
            n += len(v)
    return n


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ParseError("duplicate_key")
        out[k] = v
    return out


def loads(raw: str | bytes | bytearray | memoryview) -> Any:
    """JSON → Python, rejecting invalid UTF-8 ("bad_utf8"), invalid JSON ("bad_json") and objects
    that repeat a key ("duplicate_key").

    Duplicate keys are looked for cheaply first: when the frame has no backslash and no quote
    followed by whitespace, every key ends in the two bytes `":`, so their count equals the
    number of keys parsed unless a key was repeated. Only frames failing that count (or looking
    unusual) are parsed a second time with a duplicate-rejecting hook.
    """
    if isinstance(raw, memoryview | bytearray):
        raw = bytes(raw)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if isinstance(raw, bytes):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ParseError("bad_utf8") from exc
        raise ParseError("bad_json") from exc
    except TypeError as exc:
        raise ParseError("bad_json") from exc
    if not isinstance(obj, dict | list):
        return obj
    data = raw.encode() if isinstance(raw, str) else raw
    if b"\\" not in data and not _QUOTE_SPACE.search(data) and data.count(b'":') == _count_keys(obj):
        return obj
    try:
        json.loads(data, object_pairs_hook=_no_duplicates)
    except ParseError:
        raise
    except (ValueError, RecursionError) as exc:  # orjson accepted it; the stdlib should too
        raise ParseError("bad_json") from exc
    return obj


def get(data: dict[str, Any], key: str) -> Any:
    if key not in data or data[key] is None:
        raise ParseError(f"missing_field:{key}")
    return data[key]


def int64(data: dict[str, Any], key: str) -> int:
    """A JSON integer that fits int64 (not a string, float or bool)."""
    v = get(data, key)
    if type(v) is not int or not INT64_MIN <= v <= INT64_MAX:
        raise ParseError(f"bad_number:{key}")
    return v


def id_field(data: dict[str, Any], key: str) -> int:
    v = int64(data, key)
    if v < 0:
        raise ParseError(f"bad_value:{key}")
    return v


def time_ms(data: dict[str, Any], key: str) -> int:
    """An epoch-millisecond time: a non-negative int64 (plausibility is checked in context)."""
    v = int64(data, key)
    if v < 0:
        raise ParseError(f"bad_time:{key}")
    return v


def decimal(v: Any, key: str) -> float:
    """A plain decimal string ("61800.30", "-1", "0.006") → finite float."""
    if type(v) is not str or not _DECIMAL.fullmatch(v):
        raise ParseError(f"bad_number:{key}")
    x = float(v)
    if not math.isfinite(x):
        raise ParseError(f"bad_number:{key}")
    return x


def positive(data: dict[str, Any], key: str) -> float:
    x = decimal(get(data, key), key)
    if x <= 0:
        raise ParseError(f"bad_value:{key}")
    return x


def non_negative(data: dict[str, Any], key: str) -> float:
    x = decimal(get(data, key), key)
    if x < 0:
        raise ParseError(f"bad_value:{key}")
    return x


def symbol(data: dict[str, Any]) -> str:
    s = get(data, "s")
    if type(s) is not str or not _SYMBOL.fullmatch(s):
        raise ParseError("bad_value:s")
    return s


def boolean(data: dict[str, Any], key: str) -> bool:
    v = get(data, key)
    if type(v) is not bool:
        raise ParseError(f"bad_value:{key}")
    return v


def levels(data: dict[str, Any], key: str, min_qty_exclusive: bool = False) -> list[tuple[float, float]]:
    """Price levels `[["price", "qty"], ...]`: positive prices, unique; qty ≥ 0 (> 0 when
    `min_qty_exclusive`, as in a partial book, where a level without quantity makes no sense)."""
    raw = get(data, key)
    if type(raw) is not list:
        raise ParseError(f"bad_levels:{key}")
    out: list[tuple[float, float]] = []
    for lvl in raw:
        if type(lvl) is not list or len(lvl) != 2:
            raise ParseError(f"bad_levels:{key}")
        px, qty = decimal(lvl[0], key), decimal(lvl[1], key)
        if px <= 0 or qty < 0 or (min_qty_exclusive and qty == 0):
            raise ParseError(f"bad_value:{key}")
        out.append((px, qty))
    if len({px for px, _ in out}) != len(out):
        raise ParseError(f"duplicate_level:{key}")
    return out

"""Row isolation of the landing writer: one bad row, file or minute never takes the rest with it.

`land_rows(writer, kind, rows, fallback_ms)` checks every row on its own — Python types against
the canonical schema (polars would coerce a float id or a string price silently), required
columns, the writer's symbol, an event time a date can hold, positive prices and quantities —
refuses the bad ones as `unlandable:<why>` dead letters, lands the rest minute by minute, and
hands back the minutes it could not write (for a retry) instead of raising.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import polars as pl

from alpha_assets.market.fields import INT64_MAX, INT64_MIN, TIME_MAX_MS, TIME_MIN_MS
from alpha_assets.market.landing import KINDS, LandingWriter, minute_parts
from alpha_assets.market.schema import dead_letter

log = logging.getLogger(__name__)

# columns a landed row cannot do without (the others may be null)
REQUIRED = {
    "trades": ("symbol", "event_time_ms", "agg_trade_id", "price", "qty", "is_buyer_maker"),
    "book": ("symbol", "event_time_ms", "first_update_id", "last_update_id"),
    "deadletter": ("source", "reason"),
}
MINUTE_MS = 60_000


@dataclass
class LandResult:
    """What `land_rows` did: rows landed, files written, rows refused (as the dead letters it
    landed for them) and minutes it could not write, handed back as (kind, minute_ms, rows, error)
    with the caller's own row objects."""

    landed: int = 0  # rows of the kind asked for
    files: list[Path] = field(default_factory=list)
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    deadletters_landed: int = 0  # of those refused rows
    failed: list[tuple[str, int, list[dict[str, Any]], str]] = field(default_factory=list)


def _type_problem(row: dict[str, Any], schema: dict[str, pl.DataType], required: tuple[str, ...]) -> str | None:
    """Why `row` does not fit `schema` (None when it does); polars would coerce silently."""
    for name, dtype in schema.items():
        v = row.get(name)
        if v is None:
            if name in required:
                return f"missing:{name}"
            continue
        if dtype == pl.Int64:
            ok = type(v) is int and INT64_MIN <= v <= INT64_MAX
        elif dtype == pl.Float64:
            ok = type(v) in (float, int) and math.isfinite(v)
        elif dtype == pl.Boolean:
            ok = type(v) is bool
        else:
            ok = type(v) is str
        if not ok:
            return f"type:{name}"
    return None


def time_ok(v: Any) -> TypeGuard[int]:
    """Whether `v` is an epoch-ms time a landing file can be named by."""
    return type(v) is int and TIME_MIN_MS <= v < TIME_MAX_MS


def deadletter_time(row: dict[str, Any], fallback_ms: int) -> int:
    """The time a dead letter is filed by: its receive time (its event time may be the very thing
    that was wrong), else its event time, else `fallback_ms`."""
    return next((t for c in ("recv_time_ms", "event_time_ms") if time_ok(t := row.get(c))), fallback_ms)


def land_rows(w: LandingWriter, kind: str, rows: list[dict[str, Any]], fallback_ms: int) -> LandResult:
    """Land `rows` of `kind` (trades | book | deadletter) into their minutes, row by row
    isolated: see the module docstring. Trades and books go to the minute of their event
    time, dead letters to that of their receive time (their event time may be the very thing
    that was wrong), else their event time, else `fallback_ms`. Never raises."""
    res = LandResult()
    if not rows:
        return res
    schema = KINDS[kind][2]
    assert schema is not None
    good: dict[int, list[dict[str, Any]]] = {}
    refused: list[dict[str, Any]] = []
    for row in rows:
        why = _type_problem(row, schema, REQUIRED[kind]) if isinstance(row, dict) else "type:row"
        if why is None and kind != "deadletter":
            if row["symbol"] != w.symbol:
                why = "symbol"
            elif not time_ok(row["event_time_ms"]):
                why = "event_time"
            elif kind == "trades" and not (row["price"] > 0 and row["qty"] > 0):
                why = "value"
        if why is not None:
            refused.append(_refused(kind, why, row))
            continue
        if kind == "deadletter":
            t = deadletter_time(row, fallback_ms)
        else:
            t = row["event_time_ms"]
        good.setdefault(t // MINUTE_MS * MINUTE_MS, []).append(row)
    for minute, part in sorted(good.items()):
        date, hhmm = minute_parts(minute)
        try:
            frame = pl.DataFrame({c: [r.get(c) for r in part] for c in schema}, schema=schema)  # by column: 5× faster
            path = w.write_minute(kind, date, hhmm, frame)
        except Exception as exc:  # handed back to the caller, who retries
            log.warning("could not land %s %s %s %s: %s", kind, w.symbol, date, hhmm, exc)
            res.failed.append((kind, minute, part, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        res.landed += len(part)
        if path is not None:
            res.files.append(path)
    if refused:  # well-formed dead letters by construction: this recursion is one level deep
        sub = land_rows(w, "deadletter", refused, fallback_ms)
        res.deadletters += refused
        res.deadletters_landed += sub.landed
        res.files += sub.files
        res.failed += sub.failed
    return res


def _refused(kind: str, why: str, row: Any) -> dict[str, Any]:
    r = row if isinstance(row, dict) else {}
    key = r.get("agg_trade_id", r.get("last_update_id", r.get("key")))
    return dead_letter(kind, f"unlandable:{why}", r.get("symbol"), r.get("event_time_ms"),
                       str(key) if key is not None else None, {k: repr(v)[:100] for k, v in r.items()}
                       if r else repr(row), stream=r.get("stream") if isinstance(r.get("stream"), str) else None,
                       recv_time_ms=r.get("recv_time_ms"))


"""Raw Binance USD-M WebSocket captures (`<recv ns> <JSON>` per line, gzip) → canonical frames.

The book is rebuilt from the REST snapshot plus the `@depth@0ms` diff stream (DiffBookBuilder)
and sampled on 100 ms event-time boundaries, like the `depth5@100ms` stream a live collector
would record. Diffs that arrive before the snapshot line are buffered, as a live client does.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from alpha_assets.market.binance import (
    BOOK_SCHEMA,
    BOOK_TICKER_SCHEMA,
    DEADLETTER_SCHEMA,
    TRADES_SCHEMA,
    DepthDiff,
    DepthSnapshot,
    ParseError,
    dead_letter,
    parse_depth,
    parse_snapshot,
    parse_trade,
)
from alpha_assets.market.book_builder import DiffBookBuilder

BOOK_STEP_MS = 100

TOP_SCHEMA: dict[str, pl.DataType] = {
    "last_update_id": pl.Int64(),
    "event_time_ms": pl.Int64(),
    "bid_px": pl.Float64(),
    "bid_qty": pl.Float64(),
    "ask_px": pl.Float64(),
    "ask_qty": pl.Float64(),
}


@dataclass
class _Lines:
    trades: list[dict[str, Any]] = field(default_factory=list)
    agg_trades: list[dict[str, Any]] = field(default_factory=list)
    tickers: list[tuple[Any, ...]] = field(default_factory=list)
    diffs: list[DepthDiff] = field(default_factory=list)
    snapshots: list[tuple[int, DepthSnapshot]] = field(default_factory=list)  # (index in diffs, snap)
    dead: list[dict[str, Any]] = field(default_factory=list)


def _iter_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from fh


def _source_of(stream: str | None) -> str:
    if stream is None:
        return "capture"
    tail = stream.split("@", 1)[-1]
    if tail.startswith(("trade", "aggTrade")):
        return "trades"
    if tail.startswith("depth"):
        return "book"
    if tail.startswith("bookTicker"):
        return "book_ticker"
    return "capture"


def _ticker(data: dict[str, Any], recv_ms: int) -> tuple[Any, ...]:
    # hot path (2/3 of the lines): plain float() on the strings, any failure → ParseError
    try:
        row = (
            str(data["s"]).upper(),
            int(data["u"]),
            int(data["E"] if data.get("E") is not None else data["T"]),
            recv_ms,
            float(data["b"]),
            float(data["B"]),
            float(data["a"]),
            float(data["A"]),
        )
    except KeyError as exc:
        raise ParseError(f"missing_field:{exc.args[0]}") from exc
    except (TypeError, ValueError) as exc:
        raise ParseError("bad_number") from exc
    if not (row[4] > 0 and row[6] > 0 and row[5] >= 0 and row[7] >= 0):
        raise ParseError("bad_value")
    return row


def _read_lines(path: Path) -> _Lines:
    out = _Lines()
    for lineno, raw in enumerate(_iter_lines(path)):
        line = raw.strip()
        if not line:
            continue
        stamp, _, body = line.partition(b" ")
        stream: str | None = None
        data: Any = None
        try:
            try:
                recv_ms = int(stamp) // 1_000_000
            except ValueError as exc:
                raise ParseError("bad_line") from exc
            try:
                msg = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise ParseError("bad_json") from exc
            if not isinstance(msg, dict):
                raise ParseError("not_object")
            if "stream" in msg:
                stream, data = msg.get("stream"), msg.get("data")
                if not isinstance(stream, str) or not isinstance(data, dict):
                    raise ParseError("bad_envelope")
            else:
                data = msg
            e = data.get("e")
            if e == "bookTicker" or (e is None and stream is not None and stream.endswith("@bookTicker")):
                out.tickers.append(_ticker(data, recv_ms))
            elif e == "depthUpdate":
                out.diffs.append(parse_depth(data, recv_ms))
            elif e == "trade":
                out.trades.append(parse_trade(data, recv_ms))
            elif e == "aggTrade":
                out.agg_trades.append(parse_trade(data, recv_ms))
            elif "lastUpdateId" in data:
                out.snapshots.append((len(out.diffs), parse_snapshot(data)))
            else:
                raise ParseError("unknown_event")
        except ParseError as err:
            sym = data.get("s") if isinstance(data, dict) and isinstance(data.get("s"), str) else None
            ev = data.get("E") if isinstance(data, dict) and isinstance(data.get("E"), int) else None
            out.dead.append(
                dead_letter(_source_of(stream), err.reason, sym, ev, f"{path.name}:{lineno + 1}", raw.decode(
                    "utf-8", errors="replace").rstrip("\n"))
            )
    return out


def _diff_key(d: DepthDiff) -> str:
    return str(d.last_update_id)


def _diff_payload(d: DepthDiff) -> dict[str, Any]:
    return {"E": d.event_time_ms, "U": d.first_update_id, "u": d.last_update_id, "pu": d.prev_last_update_id,
            "n_bids": len(d.bids), "n_asks": len(d.asks)}


def rebuild_book(
    symbol: str,
    diffs: list[DepthDiff],
    snapshots: list[tuple[int, DepthSnapshot]],
    step_ms: int = BOOK_STEP_MS,
    with_tops: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[Any, ...]]]:
    """(book rows, dead letters, per-diff top of book) from diffs in arrival order.

    A snapshot applies to the diffs buffered before it as well (they are replayed from the
    buffer and the stale ones dropped). Book rows are emitted at each `step_ms` event-time
    boundary at which the book changed since the previous row (so last_update_id is unique);
    event_time_ms is the boundary; last_update_id and recv time are those of the last applied
    diff, first_update_id and prev_last_update_id those of the first diff since the previous row.
    """
    builder = DiffBookBuilder(symbol)
    rows: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    tops: list[tuple[Any, ...]] = []
    snap_at = {idx: snap for idx, snap in snapshots}
    # diffs that came while the builder had no usable snapshot; replayed when one arrives
    pending: list[DepthDiff] = []
    changed_since_row = False
    # like depth5@100ms: a row spans the diffs since the previous row, so U and pu are those
    # of the first of them (pu then equals the previous row's u unless a gap intervened)
    span_first: tuple[int, int | None] = (0, None)

    def emit_until(t_ms: int) -> None:
        nonlocal changed_since_row
        # the state is constant between diffs: it only needs a row at the first boundary at or
        # after the last applied diff's event time, if that boundary is before t_ms
        if not changed_since_row or builder.event_time_ms is None:
            return
        boundary = -(-builder.event_time_ms // step_ms) * step_ms
        if boundary < t_ms:
            row = builder.top(5, event_time_ms=boundary)
            row["first_update_id"], row["prev_last_update_id"] = span_first
            rows.append(row)
            changed_since_row = False
    def apply(d: DepthDiff) -> None:
        nonlocal changed_since_row, span_first
        status = builder.apply(d)
        if status == "applied":
            if not changed_since_row:
                span_first = (d.first_update_id, d.prev_last_update_id)
            changed_since_row = True
            if with_tops:
                tops.append((d.last_update_id, d.event_time_ms, *builder.best()))
        elif status == "gap":
            dead.append(dead_letter("book", "gap", symbol, d.event_time_ms, _diff_key(d), _diff_payload(d)))
        elif status == "waiting":
            pending.append(d)

    for i, d in enumerate([*diffs, None]):
        if i in snap_at:
            builder.load_snapshot(snap_at[i])
            replay, pending[:] = list(pending), []
            for p in replay:
                apply(p)
        if d is None:
            break
        emit_until(d.event_time_ms)
        apply(d)
    # the capture's last state, at the boundary that follows it
    if builder.event_time_ms is not None:
        emit_until(builder.event_time_ms + step_ms + 1)
    for d in pending:
        dead.append(dead_letter("book", "unsynced", symbol, d.event_time_ms, _diff_key(d), _diff_payload(d)))
    return rows, dead, tops


def read_ws_capture(path: str | Path, with_tops: bool = False) -> dict[str, pl.DataFrame]:
    """Frames `trades`, `book`, `book_ticker`, `deadletters` (plus `book_top`, the top of book
    after every applied diff keyed by last_update_id, when `with_tops`)."""
    path = Path(path)
    lines = _read_lines(path)
    dead = lines.dead

    trades = lines.agg_trades
    if lines.agg_trades and lines.trades:
        # trade ids and aggregate ids are different id spaces: keep the aggregates
        for row in lines.trades:
            dead.append(dead_letter("trades", "id_space_conflict", row["symbol"], row["event_time_ms"],
                                    str(row["agg_trade_id"]), row))
    elif lines.trades:
        trades = lines.trades
    trades_df = pl.DataFrame(trades, schema=TRADES_SCHEMA, orient="row") if trades else pl.DataFrame(
        schema=TRADES_SCHEMA)
    trades_df, dup = _dedupe(trades_df, "agg_trade_id")
    for row in dup.iter_rows(named=True):
        dead.append(dead_letter("trades", "duplicate", row["symbol"], row["event_time_ms"],
                                str(row["agg_trade_id"]), row))
    trades_df = trades_df.sort("event_time_ms", "agg_trade_id")

    symbols = {d.symbol for d in lines.diffs}
    book_rows: list[dict[str, Any]] = []
    tops: list[tuple[Any, ...]] = []
    for sym in sorted(symbols):
        diffs = [d for d in lines.diffs if d.symbol == sym]
        if len(symbols) == 1:
            snaps = lines.snapshots
        else:  # a REST snapshot has no symbol: only usable when the capture holds one symbol
            snaps = []
        rows, bdead, t = rebuild_book(sym, diffs, snaps, with_tops=with_tops)
        book_rows += rows
        dead += bdead
        tops += t
    book_df = pl.DataFrame(book_rows, schema=BOOK_SCHEMA) if book_rows else pl.DataFrame(schema=BOOK_SCHEMA)
    book_df = book_df.sort("event_time_ms", "last_update_id")

    ticker_df = pl.DataFrame(lines.tickers, schema=BOOK_TICKER_SCHEMA, orient="row").sort(
        "event_time_ms", "update_id")
    out = {
        "trades": trades_df,
        "book": book_df,
        "book_ticker": ticker_df,
        "deadletters": pl.DataFrame(dead, schema=DEADLETTER_SCHEMA) if dead else pl.DataFrame(
            schema=DEADLETTER_SCHEMA),
    }
    if with_tops:
        out["book_top"] = pl.DataFrame(tops, schema=TOP_SCHEMA, orient="row")
    return out


def _dedupe(df: pl.DataFrame, key: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(first occurrence of each (symbol, key), the later repeats)."""
    first = df.with_row_index("_i").unique(["symbol", key], keep="first", maintain_order=True)
    repeats = df.with_row_index("_i").join(first.select("_i"), on="_i", how="anti").drop("_i")
    return first.drop("_i"), repeats

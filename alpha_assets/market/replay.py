"""Real recordings in the shared data directory, as canonical (date, symbol) partitions.

Sources (see ../shared/data/README.md):
* v13_testnet trades (ETHUSDT, BTCUSDT; several UTC dates) and the ETHUSDT 2025-10-17 book;
* binance_um_20240107: BTCUSDT aggTrades (1 h) and bookTicker (10 min, level 1 only);
* binance_um_ws_capture_20240808: raw WebSocket captures, rebuilt by `capture.read_ws_capture`.

Rows belong to the partition of the UTC date of their own event time (the 2024-08-08 captures
run past midnight into 2024-08-09).

Surrogate ids. Three v13 trade recordings carry no aggregate trade id, and the first 78 v13 book
rows (older collector format) carry no update ids. Rather than dead-lettering three quarters of
a day, such rows get a deterministic surrogate id: `SURROGATE_ID_BASE + rank`, where rank counts
the id-less rows of that symbol (0, 1, 2, ...) in (event_time_ms, file row) order over the whole
recording. The ids are negative, so they never collide with exchange ids (always positive), and
contiguous, so they do not look like missed trades; sorting by (event_time_ms, id) keeps file order.
Receive times absent from a recording stay null (the cleaning step fills them from event time).
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import polars as pl

from alpha_assets.market.capture import read_ws_capture
from alpha_assets.market.schema import BOOK_SCHEMA, DEADLETTER_SCHEMA, LEVELS, TRADE_SCHEMA, conform, empty
from alpha_assets.paths import shared_data_dir

SURROGATE_ID_BASE = -(10**15)
TABLES = ("trades", "book", "deadletters")
SCHEMAS = {"trades": TRADE_SCHEMA, "book": BOOK_SCHEMA, "deadletters": DEADLETTER_SCHEMA}
SORT_KEYS = {"trades": ["event_time_ms", "agg_trade_id"], "book": ["event_time_ms", "last_update_id"],
             "deadletters": []}

Frames = dict[str, pl.DataFrame]


def _date_col(col: str = "event_time_ms") -> pl.Expr:
    return pl.from_epoch(pl.col(col), time_unit="ms").dt.strftime("%Y-%m-%d")


def _surrogate(frame: pl.DataFrame, id_col: str) -> pl.Expr:
    """Surrogate ids for the null `id_col` rows (see module docstring)."""
    missing = pl.col(id_col).is_null()
    rank = missing.cast(pl.Int64).cum_sum().over("symbol", order_by=["event_time_ms", "__row"]) - 1
    return pl.when(missing).then(SURROGATE_ID_BASE + rank).otherwise(pl.col(id_col)).alias(id_col)


# ---------------------------------------------------------------- sources (each: path → Frames)


def _v13_trades(path: Path) -> Frames:
    raw = pl.read_parquet(path).with_row_index("__row")
    trades = raw.with_columns(
        _surrogate(raw, "agg_trade_id"),
        pl.col("symbol").str.to_uppercase(),
        pl.col("event_time_ms").alias("trade_time_ms"),  # v13 kept only E
        (pl.col("recv_time_s") * 1000).round(0).cast(pl.Int64).alias("recv_time_ms"),
    )
    return {"trades": conform(trades, TRADE_SCHEMA)}


def _v13_book(path: Path) -> Frames:
    raw = pl.read_parquet(path).with_row_index("__row")
    book = raw.with_columns(
        pl.col("symbol").str.to_uppercase(),
        _surrogate(raw, "last_update_id"),
        pl.col("first_update_id").fill_null(_surrogate(raw, "last_update_id")),
        pl.col("recv_time_ms").round(0).cast(pl.Int64),
    )
    return {"book": conform(book, BOOK_SCHEMA)}


def _archive_trades(path: Path) -> Frames:
    raw = pl.read_parquet(path)
    ms = (pl.col("ts_ns") // 1_000_000).cast(pl.Int64)
    trades = raw.select(
        pl.lit("BTCUSDT").alias("symbol"),
        ms.alias("event_time_ms"),
        ms.alias("trade_time_ms"),
        pl.lit(None, dtype=pl.Int64).alias("recv_time_ms"),  # exchange archive: no local receive time
        pl.col("agg_trade_id"),
        pl.col("price"),
        pl.col("qty"),
        # side is the taker's: +1 taker buy ⇒ the buyer is not the maker
        (pl.col("side") < 0).alias("is_buyer_maker"),
    )
    bad = raw.filter(~pl.col("side").is_in([1, -1]))
    dead = bad.select(
        pl.lit("trades").alias("source"), pl.lit("bad_value:side").alias("reason"), pl.lit("BTCUSDT").alias("symbol"),
        (pl.col("ts_ns") // 1_000_000).alias("event_time_ms"), pl.col("agg_trade_id").cast(pl.Utf8).alias("key"),
        pl.struct(pl.all()).struct.json_encode().alias("payload"),
    )
    trades = trades.filter(raw["side"].is_in([1, -1]))
    return {"trades": conform(trades, TRADE_SCHEMA), "deadletters": conform(dead, DEADLETTER_SCHEMA)}


def _archive_book_ticker(path: Path) -> Frames:
    raw = pl.read_parquet(path)
    ms = (pl.col("ts_ns") // 1_000_000).cast(pl.Int64)
    nulls = [pl.lit(None, dtype=pl.Float64).alias(f"{side}_{what}_{i}")
             for side in ("bid", "ask") for what in ("px", "qty") for i in range(2, LEVELS + 1)]
    book = raw.select(
        pl.lit("BTCUSDT").alias("symbol"),
        ms.alias("event_time_ms"),
        pl.lit(None, dtype=pl.Int64).alias("recv_time_ms"),
        pl.col("update_id").alias("first_update_id"),
        pl.col("update_id").alias("last_update_id"),
        # bookTicker updates do not chain (consecutive tickers skip ids): no pu
        pl.lit(None, dtype=pl.Int64).alias("prev_last_update_id"),
        pl.col("bid_px").alias("bid_px_1"), pl.col("bid_qty").alias("bid_qty_1"),
        pl.col("ask_px").alias("ask_px_1"), pl.col("ask_qty").alias("ask_qty_1"),
        *nulls,
    )
    return {"book": conform(book, BOOK_SCHEMA)}


def _capture(path: Path) -> Frames:
    out = read_ws_capture(path)
    return {k: out[k] for k in TABLES}


# (relative path, loader, symbol the file holds: lets load_replay skip unrelated files)
SOURCES: list[tuple[str, Callable[[Path], Frames], str]] = [
    ("v13_testnet/trades_ethusdt.parquet", _v13_trades, "ETHUSDT"),
    ("v13_testnet/trades_btcusdt.parquet", _v13_trades, "BTCUSDT"),
    ("v13_testnet/book_ethusdt_20251017.parquet", _v13_book, "ETHUSDT"),
    ("binance_um_20240107/BTCUSDT-2024-01-07-h00.parquet", _archive_trades, "BTCUSDT"),
    ("binance_um_20240107/BTCUSDT-2024-01-07-h00m00-10.parquet", _archive_book_ticker, "BTCUSDT"),
    ("binance_um_ws_capture_20240808/usdm_btcusdt_20240808.gz", _capture, "BTCUSDT"),
    ("binance_um_ws_capture_20240808/usdm_ethusdt_20240808.gz", _capture, "ETHUSDT"),
]


@lru_cache(maxsize=16)
def _load_source(path: Path, mtime_ns: int, loader: Callable[[Path], Frames]) -> Frames:
    frames = loader(path)
    dated: Frames = {}
    for table, frame in frames.items():
        dated[table] = frame.with_columns(_date_col().alias("__date"))
    # a dead letter without event time stays with the recording's first date
    if "deadletters" in dated:
        first = min(
            (f["__date"].drop_nulls().min() for t, f in dated.items() if t != "deadletters"
             and f["__date"].drop_nulls().len() > 0),
            default=None,
        )
        dated["deadletters"] = dated["deadletters"].with_columns(pl.col("__date").fill_null(pl.lit(first)))
    return dated


_TIME_FIELD = re.compile(rb'"[ET]"\s*:\s*(\d+)')  # every event / transaction time a capture's rows are built from


@lru_cache(maxsize=16)
def _capture_dates(path: Path, mtime_ns: int) -> tuple[str, str] | None:
    """The first and last UTC date a capture's rows can fall on, without parsing it (a capture takes
    seconds to rebuild; this takes a fraction): the span of every E / T time in the file, widened by a
    day on both sides (a rebuilt book row is stamped at the step boundary after its update)."""
    times = [int(t) for t in _TIME_FIELD.findall(gzip.decompress(path.read_bytes()) if path.suffix == ".gz"
                                                  else path.read_bytes())]
    if not times:
        return None
    day = dt.timedelta(days=1)
    first = dt.datetime.fromtimestamp(min(times) / 1000, tz=dt.UTC).date() - day
    last = dt.datetime.fromtimestamp(max(times) / 1000, tz=dt.UTC).date() + day
    return first.isoformat(), last.isoformat()


def _sources(symbol: str | None = None, date: str | None = None) -> list[Frames]:
    """The recordings (of `symbol`); with `date`, a capture whose times cannot reach that date is not read."""
    root = shared_data_dir()
    out = []
    for rel, loader, sym in SOURCES:
        path = root / rel
        if (symbol is not None and sym != symbol) or not path.exists():
            continue
        mtime = path.stat().st_mtime_ns
        if date is not None and loader is _capture:
            span = _capture_dates(path, mtime)
            if span is None or not span[0] <= date <= span[1]:
                continue
        out.append(_load_source(path, mtime, loader))
    return out


def replay_partitions() -> list[tuple[str, str]]:
    """Every (date, symbol) holding at least one trade or book row, sorted."""
    seen: set[tuple[str, str]] = set()
    for frames in _sources():
        for table in ("trades", "book"):
            if table in frames:
                seen.update(frames[table].select("__date", "symbol").unique().iter_rows())
    return sorted(seen)


def has_replay(date: str, symbol: str) -> bool:
    """(date, symbol) is one of `replay_partitions()` among the recordings `load_replay` reads for the
    symbol, found without rebuilding captures that cannot hold the date (what `auto` resolves per step)."""
    symbol = symbol.upper()
    hit = (pl.col("__date") == date) & (pl.col("symbol") == symbol)
    return any(table in frames and frames[table].select(hit.any()).item()
               for frames in _sources(symbol, date) for table in ("trades", "book"))


def load_replay(date: str, symbol: str) -> Frames:
    """`trades`, `book`, `deadletters` of one partition (canonical schemas, sorted; a table the
    recordings lack for this partition is an empty frame). Unknown partition → KeyError."""
    symbol = symbol.upper()
    parts: dict[str, list[pl.DataFrame]] = {t: [] for t in TABLES}
    for frames in _sources(symbol, date):
        for table, frame in frames.items():
            parts[table].append(frame.filter((pl.col("__date") == date) & (pl.col("symbol") == symbol)))
    out: Frames = {}
    for table in TABLES:
        frame = pl.concat(parts[table]).drop("__date") if parts[table] else empty(SCHEMAS[table])
        out[table] = conform(frame.sort(SORT_KEYS[table]) if SORT_KEYS[table] else frame, SCHEMAS[table])
    if out["trades"].is_empty() and out["book"].is_empty():
        raise KeyError(f"no recording for partition {date}|{symbol}")
    return out

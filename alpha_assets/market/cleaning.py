"""Cleaning raw trades and book snapshots: every bad row goes to a dead-letter table with a
reason, duplicates are removed and counted, gaps in ids are reported. Nothing disappears:
rows in = clean rows + dead-letter rows (id_gap records describe gaps; they remove nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from alpha_assets.market.schema import BOOK_SCHEMA, DEADLETTER_SCHEMA, LEVELS, TRADE_SCHEMA, conform, empty

GAP = "id_gap"


@dataclass
class CleanResult:
    frame: pl.DataFrame
    deadletters: pl.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        removed = sum(n for reason, n in self.counts.items() if reason != GAP)
        return self.frame.height + removed


def _cast_lenient(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> tuple[pl.DataFrame, pl.Expr]:
    """Cast to the canonical schema (`__row` = input position); a value that does not cast becomes null
    and marks the row unparseable (a value that was null before the cast is not unparseable). Columns
    already of the canonical type are taken as they are: no cast, no check."""
    exprs, broken = [], pl.lit(False)
    for name, dtype in schema.items():
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        if frame.schema[name] == dtype:
            exprs.append(pl.col(name))
            continue
        cast = pl.col(name).cast(dtype, strict=False)
        exprs.append(cast.alias(name))
        broken = broken | (pl.col(name).is_not_null() & cast.is_null())
    # (collect may hand back several chunks; the clean frame is rechunked before it is returned, since
    # parquet bytes follow the chunk layout)
    cast_frame = frame.lazy().with_row_index("__row").select(pl.col("__row"), *exprs, broken.alias("__unparseable"))
    return cast_frame.collect(), pl.col("__unparseable")


def _payloads(raw: pl.DataFrame, rows: pl.Series) -> pl.Series:
    """The input rows at positions `rows`, each as a JSON object of its original values."""
    return raw[rows].select(pl.struct(raw.columns).struct.json_encode()).to_series()


def _first_reason(rules: list[tuple[str, pl.Expr]]) -> pl.Expr:
    expr = pl.lit(None, dtype=pl.Utf8)
    for reason, cond in reversed(rules):
        expr = pl.when(cond).then(pl.lit(reason)).otherwise(expr)
    return expr


def _dead(frame: pl.DataFrame, raw: pl.DataFrame, source: str, key: str) -> pl.DataFrame:
    if frame.is_empty():
        return empty(DEADLETTER_SCHEMA)
    return conform(frame.select(
        pl.lit(source).alias("source"),
        pl.col("__reason").alias("reason"),
        pl.col("symbol"),
        pl.col("event_time_ms"),
        pl.col(key).cast(pl.Utf8).alias("key"),
    ).with_columns(_payloads(raw, frame.get_column("__row")).alias("payload")), DEADLETTER_SCHEMA)


def _split_bad(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows with a reason, rows without), without copying when every row is good."""
    bad = frame.get_column("__reason").is_not_null()
    if not bad.any():
        return frame.clear(), frame
    return frame.filter(bad), frame.filter(~bad)


def _in_order(frame: pl.DataFrame, id_col: str) -> bool:
    """Already sorted by (symbol, event_time_ms, id, __row)? One symbol, time non-decreasing and ids
    non-decreasing within equal times (__row increases by construction): the sort would be a no-op."""
    if frame.height < 2:
        return True
    sym = frame.get_column("symbol")
    if sym.null_count() or sym.n_unique() != 1:
        return False
    ok = frame.select(
        ((pl.col("event_time_ms").diff() > 0)
         | ((pl.col("event_time_ms").diff() == 0) & (pl.col(id_col).diff() >= 0))).slice(1).all()
        & pl.col("event_time_ms").is_not_null().all() & pl.col(id_col).is_not_null().all()
    ).item()
    return bool(ok)


def _ordered_unique(good: pl.DataFrame, id_col: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(good rows sorted by symbol, time, id, input position; the later repeats of a (symbol, id))."""
    if not _in_order(good, id_col):
        good = good.sort(["symbol", "event_time_ms", id_col, "__row"])
    single = good.height and good.get_column("symbol").n_unique() == 1
    if single and bool((good.get_column(id_col).diff().slice(1) > 0).all()):
        return good, good.clear()  # ids strictly increasing: none repeats
    first = (good.get_column(id_col).is_first_distinct() if single
             else good.select(pl.struct("symbol", id_col).is_first_distinct()).to_series())
    if first.all():
        return good, good.clear()
    return good.filter(first), good.filter(~first)


def _sorted_ids(seen: pl.DataFrame, id_col: str, extra: list[str]) -> pl.DataFrame:
    """Distinct (symbol, id) rows sorted by symbol and id; a one-symbol strictly increasing id column
    (every recording and simulated day) is that already."""
    ids = seen.get_column(id_col)
    if (seen.height and seen.get_column("symbol").n_unique() == 1 and ids.null_count() == 0
            and bool((ids.diff().slice(1) > 0).all())):
        return seen.select("symbol", "event_time_ms", id_col, *extra)
    return seen.unique(["symbol", id_col]).select("symbol", "event_time_ms", id_col, *extra).sort("symbol", id_col)


def _counts(dead: pl.DataFrame) -> dict[str, int]:
    if dead.is_empty():
        return {}
    return {r: int(n) for r, n in dead.group_by("reason").len().sort("reason").iter_rows()}


def _not_finite(col: str) -> pl.Expr:
    return pl.col(col).is_not_null() & ~pl.col(col).is_finite()


def clean_trades(raw: pl.DataFrame, source: str = "trades") -> CleanResult:
    frame, unparseable = _cast_lenient(raw, TRADE_SCHEMA)
    required = ["symbol", "event_time_ms", "agg_trade_id", "price", "qty", "is_buyer_maker"]
    reason = _first_reason([
        ("unparseable", unparseable),
        ("null_field", pl.any_horizontal([pl.col(c).is_null() for c in required])),
        ("nan_or_inf", _not_finite("price") | _not_finite("qty")),
        ("non_positive_qty", pl.col("qty") <= 0),
        ("non_positive_price", pl.col("price") <= 0),
    ])
    frame = frame.with_columns(reason.alias("__reason"))
    bad, good = _split_bad(frame)
    good, dups = _ordered_unique(good, "agg_trade_id")
    dups = dups.with_columns(pl.lit("duplicate").alias("__reason"))
    # Fill receive/trade time from event time only where the recording lacks them.
    if good.get_column("trade_time_ms").null_count() or good.get_column("recv_time_ms").null_count():
        good = good.with_columns(pl.col("trade_time_ms").fill_null(pl.col("event_time_ms")),
                                 pl.col("recv_time_ms").fill_null(pl.col("event_time_ms")))
    # Gaps are ids never received: a dead-lettered row's id is not a gap.
    # Negative ids are surrogates for id-less recordings (market.replay): no sequence to check.
    seen = frame.select("symbol", "event_time_ms", "agg_trade_id").filter(
        (pl.col("agg_trade_id") >= 0) & pl.col("symbol").is_not_null())
    gaps = _id_gaps(_sorted_ids(seen, "agg_trade_id", []), "agg_trade_id", source)
    dead = pl.concat([_dead(bad, raw, source, "agg_trade_id"), _dead(dups, raw, source, "agg_trade_id"), gaps])
    return CleanResult(good.select(list(TRADE_SCHEMA)).rechunk(), dead, _counts(dead))


def _id_gaps(good: pl.DataFrame, id_col: str, source: str) -> pl.DataFrame:
    """One record per hole in a per-symbol id sequence (`good`: distinct ids sorted per symbol)."""
    holes = good.with_columns(pl.col(id_col).shift(1).over("symbol").alias("__prev")).filter(
        pl.col(id_col) - pl.col("__prev") > 1
    )
    missing = (pl.col(id_col) - pl.col("__prev") - 1).cast(pl.Utf8)
    return _gap_records(holes, source, pl.format("{}..{}", pl.col("__prev") + 1, pl.col(id_col) - 1),
                        pl.concat_str(pl.lit('{"missing": '), missing, pl.lit("}")))


def clean_book(raw: pl.DataFrame, source: str = "book") -> CleanResult:
    frame, unparseable = _cast_lenient(raw, BOOK_SCHEMA)
    levels = [f"{side}_{kind}_{k}" for side in ("bid", "ask") for kind in ("px", "qty") for k in range(1, LEVELS + 1)]
    qtys = [c for c in levels if "_qty_" in c]
    pxs = [c for c in levels if "_px_" in c]
    reason = _first_reason([
        ("unparseable", unparseable),
        ("null_field", pl.any_horizontal([pl.col(c).is_null() for c in
                                          ("symbol", "event_time_ms", "last_update_id", "bid_px_1", "ask_px_1",
                                           "bid_qty_1", "ask_qty_1")])),
        ("nan_or_inf", pl.any_horizontal([_not_finite(c) for c in levels])),
        ("negative_qty", pl.any_horizontal([pl.col(c) < 0 for c in qtys])),
        ("non_positive_price", pl.any_horizontal([pl.col(c) <= 0 for c in pxs])),
        ("crossed_book", pl.col("bid_px_1") >= pl.col("ask_px_1")),
        ("bad_levels", _bad_levels()),
    ])
    frame = frame.with_columns(reason.alias("__reason"))
    bad, good = _split_bad(frame)
    good, dups = _ordered_unique(good, "last_update_id")
    dups = dups.with_columns(pl.lit("duplicate").alias("__reason"))
    if good.get_column("recv_time_ms").null_count():
        good = good.with_columns(pl.col("recv_time_ms").fill_null(pl.col("event_time_ms")))
    seen = frame.select("symbol", "event_time_ms", "last_update_id", "prev_last_update_id").filter(
        (pl.col("last_update_id") >= 0) & pl.col("symbol").is_not_null())
    gaps = _update_gaps(_sorted_ids(seen, "last_update_id", ["prev_last_update_id"]), source)
    dead = pl.concat([_dead(bad, raw, source, "last_update_id"), _dead(dups, raw, source, "last_update_id"), gaps])
    return CleanResult(good.select(list(BOOK_SCHEMA)).rechunk(), dead, _counts(dead))


def _bad_levels() -> pl.Expr:
    """A level with a price but no quantity (or the reverse), a present level below a missing one,
    or prices not strictly worse level by level. Missing tail levels (a thin or L1-only book) are fine."""
    checks = []
    for side, worse in (("bid", lambda a, b: a < b), ("ask", lambda a, b: a > b)):
        for k in range(1, LEVELS + 1):
            px, qty = pl.col(f"{side}_px_{k}"), pl.col(f"{side}_qty_{k}")
            checks.append(px.is_null() != qty.is_null())
            if k < LEVELS:
                nxt = pl.col(f"{side}_px_{k + 1}")
                checks.append(px.is_null() & nxt.is_not_null())
                checks.append((px.is_not_null() & nxt.is_not_null() & ~worse(nxt, px)).fill_null(False))
    return pl.any_horizontal(checks)


def _update_gaps(rows: pl.DataFrame, source: str) -> pl.DataFrame:
    """A snapshot whose pu is not the previous snapshot's u: updates were missed in between."""
    chained = rows.select("symbol", "event_time_ms", "last_update_id", "prev_last_update_id").with_columns(
        pl.col("last_update_id").shift(1).over("symbol").alias("__prev")
    )
    holes = chained.filter(pl.col("prev_last_update_id").is_not_null() & pl.col("__prev").is_not_null()
                           & (pl.col("prev_last_update_id") != pl.col("__prev")))
    payload = pl.concat_str(pl.lit('{"expected_pu": '), pl.col("__prev").cast(pl.Utf8), pl.lit(', "got_pu": '),
                            pl.col("prev_last_update_id").cast(pl.Utf8), pl.lit("}"))
    return _gap_records(holes, source, pl.format("{}..{}", pl.col("__prev"), pl.col("prev_last_update_id")), payload)


def _gap_records(holes: pl.DataFrame, source: str, key: pl.Expr, payload: pl.Expr) -> pl.DataFrame:
    if holes.is_empty():
        return empty(DEADLETTER_SCHEMA)
    return conform(holes.select(pl.lit(source).alias("source"), pl.lit(GAP).alias("reason"), pl.col("symbol"),
                                pl.col("event_time_ms"), key.alias("key"), payload.alias("payload")), DEADLETTER_SCHEMA)
